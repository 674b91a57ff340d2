/// Failures the engine reports; the C surface maps each to a status code.
public enum EngineError: Error, Equatable, CustomStringConvertible {
    /// The progress callback asked to stop, or `Cancellation.cancelAll()` was called.
    case cancelled
    /// Input data holds NaN or infinity at the given row and column.
    case nonFiniteData(row: Int, column: Int)
    /// A named input (a weight, a bias, factors) holds NaN or infinity.
    case nonFinite(String)
    /// The data are finite but an intermediate product overflowed.
    case overflow(String)
    /// An argument violates a documented precondition.
    case invalidArgument(String)
    /// Two objects that must agree (accumulators, shapes) do not.
    case mismatch(String)
    /// A LAPACK routine returned a non-zero `info`.
    case lapackFailure(routine: String, info: Int32)
    /// A serialised state is malformed.
    case corruptState(String)
    /// A buffer sized by the input would exceed `MemoryBudget.limit`; nothing was allocated.
    case outOfMemory(String)

    public var description: String {
        switch self {
        case .cancelled: return "cancelled (by the progress callback, Ctrl-C or relusv_cancel_all)"
        case let .nonFiniteData(row, column): return "data contains NaN or infinity at row \(row), column \(column)"
        case let .nonFinite(what): return what
        case let .overflow(what): return "floating-point overflow: \(what)"
        case let .invalidArgument(what): return what
        case let .mismatch(what): return what
        case let .lapackFailure(routine, info): return "LAPACK \(routine) failed with info = \(info)"
        case let .corruptState(what): return "invalid accumulator state: \(what)"
        case let .outOfMemory(what): return what
        }
    }
}
