/// Reports the progress of a long computation and relays cancellation.
///
/// The engine calls `advance(to:)` on the calling thread between blocks of
/// work; when the observer answers "stop", the computation unwinds with
/// `EngineError.cancelled` and frees everything it allocated.
public struct Progress {
    /// Called with `(done, total)`; returns `false` to cancel.
    public typealias Observer = (_ done: UInt64, _ total: UInt64) -> Bool

    public let total: UInt64
    private let observer: Observer?

    public init(total: Int, observer: Observer?) {
        self.total = UInt64(max(total, 0))
        self.observer = observer
    }

    /// A reporter that never reports and never cancels.
    public static var silent: Progress { Progress(total: 0, observer: nil) }

    /// Reports `done` units of `total`; throws `EngineError.cancelled` on request.
    public func advance(to done: Int) throws {
        guard let observer else { return }
        if !observer(UInt64(max(done, 0)), total) { throw EngineError.cancelled }
    }

    /// A reporter for a sub-task covering `range` of this one's units.
    public func scoped(_ range: Range<Int>, subtotal: Int) -> Progress {
        guard let observer, subtotal > 0 else { return .silent }
        return Progress(total: subtotal, observer: { done, _ in
            let mapped = range.lowerBound + Int(Double(done) / Double(subtotal) * Double(range.count))
            return observer(UInt64(mapped), self.total)
        })
    }

}
