// What a failed file-system call means, by its errno code.

/** The path (or a directory on the way) does not exist. */
export function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/** The volume or the user's quota is full. */
export function isFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOSPC" || code === "EDQUOT";
}

/** The file system refuses the call as asked (O_DIRECT where it is not supported). */
export function isUnsupported(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === "EINVAL";
}
