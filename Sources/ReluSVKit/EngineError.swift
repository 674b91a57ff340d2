/// Failures the engine reports; the C surface maps each case to one status code
/// (`relusv.h`): the engine owns every check of what an argument means (ranges,
/// shapes, sizes, memory), the C surface only pointers, dtypes, struct sizes and
/// size arithmetic.
public enum EngineError: Error, Equatable, CustomStringConvertible {
    /// The progress callback asked to stop, or `Cancellation.cancelAll()` was called.
    case cancelled
    /// A value is NaN or infinite: in an input (data, a weight, a bias, factors) or in an
    /// intermediate result whose finite inputs overflowed. The message says which; the
    /// constructors `nonFiniteData(row:column:)` and `overflow(_:)` word the common cases.
    case nonFinite(String)
    /// An argument violates a documented precondition.
    case invalidArgument(String)
    /// A matrix or vector does not have the shape its role needs (columns of `X`
    /// against `W`, the length of `b`, factors against their rank, rows against groups).
    case shape(String)
    /// A set that must have points (rows) has none.
    case empty(String)
    /// Two objects that must agree (accumulators merged, a state and its reader) do not.
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
        case .nonFinite(let what): return what
        case .invalidArgument(let what): return what
        case .shape(let what): return what
        case .empty(let what): return what
        case .mismatch(let what): return what
        case .lapackFailure(let routine, let info): return "LAPACK \(routine) failed with info = \(info)"
        case .corruptState(let what): return "invalid accumulator state: \(what)"
        case .outOfMemory(let what): return what
        }
    }

    /// Input data hold NaN or infinity at `row`, `column` (0-based).
    public static func nonFiniteData(row: Int, column: Int) -> EngineError {
        .nonFinite("data contains NaN or infinity at row \(row), column \(column)")
    }

    /// The inputs are finite but an intermediate result overflowed.
    public static func overflow(_ what: String) -> EngineError {
        .nonFinite("floating-point overflow: \(what)")
    }
}
