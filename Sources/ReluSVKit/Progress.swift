/// Reports the progress of a long computation and relays cancellation.
///
/// The engine calls `advance(to:)` on the calling thread between blocks of
/// work; when the observer answers "stop", or `Cancellation.cancelAll()` was
/// called since the reporter was made, the computation unwinds with
/// `EngineError.cancelled` and frees everything it allocated. Silent
/// reporters (no observer) still honour `cancelAll()`.
public struct Progress {
    /// Called with `(done, total)`; returns `false` to cancel.
    public typealias Observer = (_ done: UInt64, _ total: UInt64) -> Bool

    public let total: UInt64
    private let observer: Observer?
    /// `Cancellation.generation` when the computation started.
    private let generation: UInt64

    public init(total: Int, observer: Observer?) {
        self.init(total: total, observer: observer, generation: Cancellation.generation)
    }

    private init(total: Int, observer: Observer?, generation: UInt64) {
        self.total = UInt64(max(total, 0))
        self.observer = observer
        self.generation = generation
    }

    /// A reporter that never reports; it stops only on `Cancellation.cancelAll()`.
    public static var silent: Progress { Progress(total: 0, observer: nil) }

    /// Reports `done` units of `total`; throws `EngineError.cancelled` on request.
    public func advance(to done: Int) throws {
        try checkCancelled()
        guard let observer else { return }
        if !observer(UInt64(max(done, 0)), total) { throw EngineError.cancelled }
    }

    /// A cancellation point that does not report: throws when `cancelAll()` came since the start.
    public func checkCancelled() throws {
        try Cancellation.check(since: generation)
    }

    /// A reporter for a sub-task covering `range` of this one's units (same start generation).
    public func scoped(_ range: Range<Int>, subtotal: Int) -> Progress {
        guard let observer, subtotal > 0 else { return Progress(total: 0, observer: nil, generation: generation) }
        return Progress(
            total: subtotal,
            observer: { done, _ in
                let mapped = range.lowerBound + Int(Double(done) / Double(subtotal) * Double(range.count))
                return observer(UInt64(mapped), self.total)
            }, generation: generation)
    }

}
