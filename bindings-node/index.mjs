// ESM entry point: the same classes as the CommonJS one (one module
// instance, so `instanceof` holds across both).
import condlock from './index.cjs';

export const {
  S3Lock,
  HeldLock,
  ApstraClient,
  ApstraMutex,
  HeldMutex,
  LockError,
  LockHeld,
  LockTimeout,
  LockLost,
  NotOwned,
  ConditionalWritesUnsupported,
  TransportError,
  ServerError,
  RequestRejected,
  AccessDenied,
  MalformedResponse,
  InvalidConfiguration,
  LockCancelled,
  LockMisuse,
} = condlock;
export default condlock;
