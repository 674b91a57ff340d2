/// Process-wide cancellation: `cancelAll()` stops every engine computation
/// running at that moment, on any thread, at its next progress check.
///
/// A `Progress` records the generation current when its call started; every
/// `advance` compares it with the current one (one mutex-protected read), so
/// a call started after `cancelAll()` runs normally. The Python package calls
/// it (through `relusv_cancel_all`) when Ctrl-C reaches the main thread, so a
/// long call in a worker thread ends within one progress interval.
///
/// What a check cannot interrupt: a single LAPACK or BLAS call (an SVD of a
/// large `W`, one GEMM) runs to its end; the engine checks before and after
/// each such call, so a cancellation waits at most for the one that is running.
public enum Cancellation {
    private static let lock = Lock()
    private static var value: UInt64 = 0

    /// The current generation; it changes only on `cancelAll()`.
    public static var generation: UInt64 { lock.withLock { value } }

    /// Cancels every computation running now (they throw `EngineError.cancelled`).
    public static func cancelAll() {
        lock.withLock { value &+= 1 }
    }

    /// Throws `EngineError.cancelled` when `cancelAll()` was called since `generation`.
    public static func check(since generation: UInt64) throws {
        if self.generation != generation { throw EngineError.cancelled }
    }
}
