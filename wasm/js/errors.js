// Error classes of the ringkv package. The wasm side throws plain Errors named
// "RingkvError" with a `code`; `toRingkvError` turns each into the subclass for its code
// so callers can use `instanceof` or `err.code`.

export class RingkvError extends Error {
  constructor(message, code, details = {}) {
    super(message);
    this.name = 'RingkvError';
    /** One of the codes in index.d.ts (`ErrorCode`). */
    this.code = code;
    Object.assign(this, details);
  }
}

const make = (name, code) => {
  const C = class extends RingkvError {
    constructor(message, details) {
      super(message, code, details);
      this.name = name;
    }
  };
  Object.defineProperty(C, 'name', { value: name });
  return C;
};

export const UnavailableError = make('UnavailableError', 'UNAVAILABLE');
export const IndeterminateError = make('IndeterminateError', 'INDETERMINATE');
export const TooLargeError = make('TooLargeError', 'TOO_LARGE');
export const OverloadedError = make('OverloadedError', 'OVERLOADED');
export const UnsupportedError = make('UnsupportedError', 'UNSUPPORTED');
export const InvalidContextError = make('InvalidContextError', 'INVALID_CONTEXT');
export const InvalidArgumentError = make('InvalidArgumentError', 'INVALID_ARGUMENT');
export const ClosedError = make('ClosedError', 'CLOSED');
export const StorageError = make('StorageError', 'STORAGE');
export const CorruptValueError = make('CorruptValueError', 'CORRUPT_VALUE');
export const IdentityError = make('IdentityError', 'IDENTITY');
export const ContentionError = make('ContentionError', 'CONTENTION');
export const NotAnIntegerError = make('NotAnIntegerError', 'NOT_AN_INTEGER');

const BY_CODE = {
  UNAVAILABLE: UnavailableError,
  INDETERMINATE: IndeterminateError,
  TOO_LARGE: TooLargeError,
  OVERLOADED: OverloadedError,
  UNSUPPORTED: UnsupportedError,
  INVALID_CONTEXT: InvalidContextError,
  INVALID_ARGUMENT: InvalidArgumentError,
  CLOSED: ClosedError,
  STORAGE: StorageError,
  CORRUPT_VALUE: CorruptValueError,
  IDENTITY: IdentityError,
  CONTENTION: ContentionError,
  NOT_AN_INTEGER: NotAnIntegerError,
};

/** Converts an error thrown by the wasm bindings; anything else passes through. */
export function toRingkvError(e) {
  if (e instanceof RingkvError || !(e instanceof Error) || e.name !== 'RingkvError') return e;
  const C = BY_CODE[e.code];
  if (!C) return new RingkvError(e.message, String(e.code));
  const details = {};
  // `applied`: an update whose result could not be decoded says whether it took effect.
  for (const k of ['what', 'sizeBytes', 'limitBytes', 'applied']) if (k in e) details[k] = e[k];
  return new C(e.message, details);
}
