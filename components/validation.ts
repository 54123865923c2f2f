// Checks shared by the config readers: each throws one Error that names the offending key.

export function requireInteger(key: string, value: number, min: number, max: number): void {
    if (!Number.isInteger(value) || value < min || value > max) {
        throw new Error(`${key} must be an integer from ${min} to ${max}, got ${value}`);
    }
}

export function requireMatch(key: string, value: string, pattern: RegExp, what: string): void {
    if (!pattern.test(value)) {
        throw new Error(`${key} must be ${what}, got ${JSON.stringify(value)}`);
    }
}

export function requireRecord(key: string, value: unknown): Record<string, unknown> {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
        throw new Error(`${key} must be an object, got ${JSON.stringify(value)}`);
    }
    return value as Record<string, unknown>;
}
