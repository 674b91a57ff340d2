import COpenBLAS

/// Limits OpenBLAS to one thread while engine work runs its own threads.
///
/// OpenBLAS's thread count is process-wide state, so the override is shared:
/// the first caller to enter saves the current count and sets 1, the last to
/// leave restores it. Concurrent callers (several Python threads, say) thus
/// never leave OpenBLAS stuck at one thread, whatever order they finish in.
public enum BLASThreadLimit {
    private static let state = SharedCount()

    /// Runs `body` with OpenBLAS limited to one thread.
    public static func singleThreaded<R>(_ body: () throws -> R) rethrows -> R {
        state.enter()
        defer { state.leave() }
        return try body()
    }

    private final class SharedCount: @unchecked Sendable {
        private let lock = Lock()
        private var depth = 0
        private var saved: Int32 = 1

        func enter() {
            lock.withLock {
                if depth == 0 {
                    saved = openblas_get_num_threads()
                    openblas_set_num_threads(1)
                }
                depth += 1
            }
        }

        func leave() {
            lock.withLock {
                depth -= 1
                if depth == 0 { openblas_set_num_threads(saved) }
            }
        }
    }
}
