import CReluSV
import ReluSVKit

#if canImport(Glibc)
import Glibc
#endif

/// The thread-local message behind `relusv_last_error`, kept as a malloc'd C
/// string per thread (freed on the next failure or at thread exit).
enum LastError {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { free($0) }
        return key
    }()

    static var message: UnsafePointer<CChar>? {
        pthread_getspecific(key).map { UnsafePointer($0.assumingMemoryBound(to: CChar.self)) }
    }

    static func set(_ text: String) {
        let old = pthread_getspecific(key)
        pthread_setspecific(key, strdup(text))
        free(old)
    }
}

/// Records `message` as the calling thread's last error and returns `status`.
func fail(_ status: relusv_status, _ message: String) -> relusv_status {
    LastError.set(message)
    return status
}

/// Runs an entry point's body, turning every thrown error into a status.
///
/// Argument checks throw `CallError`; the engine throws `EngineError`.
func guarded(_ body: () throws -> Void) -> relusv_status {
    do {
        try body()
        return RELUSV_OK
    } catch let error as CallError {
        return fail(error.status, error.message)
    } catch let error as EngineError {
        return fail(status(of: error), error.description)
    } catch {
        return fail(RELUSV_ERROR_INTERNAL, "unexpected error: \(error)")
    }
}

/// An argument error found at the C boundary.
struct CallError: Error {
    let status: relusv_status
    let message: String
    init(_ status: relusv_status, _ message: String) {
        self.status = status
        self.message = message
    }
}

private func status(of error: EngineError) -> relusv_status {
    switch error {
    case .cancelled: RELUSV_ERROR_CANCELLED
    case .nonFinite: RELUSV_ERROR_NONFINITE
    case .invalidArgument: RELUSV_ERROR_INVALID_ARGUMENT
    case .shape: RELUSV_ERROR_SHAPE
    case .empty: RELUSV_ERROR_EMPTY
    case .mismatch: RELUSV_ERROR_MISMATCH
    case .lapackFailure: RELUSV_ERROR_LAPACK
    case .corruptState: RELUSV_ERROR_CORRUPT_STATE
    case .outOfMemory: RELUSV_ERROR_OUT_OF_MEMORY
    }
}

/// Throws `RELUSV_ERROR_NULL_POINTER` naming `name` when `pointer` is nil.
func required<T>(_ pointer: T?, _ name: String) throws -> T {
    guard let pointer else { throw CallError(RELUSV_ERROR_NULL_POINTER, "\(name) is NULL") }
    return pointer
}

@_cdecl("relusv_last_error")
public func relusv_last_error() -> UnsafePointer<CChar> {
    LastError.message ?? UnsafePointer(emptyString)
}

private let emptyString: UnsafeMutablePointer<CChar> = {
    let p = UnsafeMutablePointer<CChar>.allocate(capacity: 1)
    p.pointee = 0
    return p
}()
