import CReluSV
import ReluSVKit

/// `relusv_set_extremes`: the column-wise maxima and minima of many sets of
/// rows (`ReluSVKit.setExtremes`, MATH.md section 11), every index checked
/// before any is read, every size product checked for overflow.
@_cdecl("relusv_set_extremes")
public func relusv_set_extremes(
    _ v: UnsafePointer<relusv_matrix>?, _ sets: UnsafePointer<Int64>?, _ count: Int, _ setSize: Int,
    _ hi: UnsafeMutablePointer<Double>?, _ lo: UnsafeMutablePointer<Double>?,
    _ progressFn: relusv_progress_fn?, _ userData: UnsafeMutableRawPointer?
) -> relusv_status {
    guarded {
        let v = try MatrixArgument(v, "v")
        guard count >= 0, setSize >= 0 else {
            throw CallError(
                RELUSV_ERROR_INVALID_ARGUMENT,
                "count = \(UInt(bitPattern: count)), set_size = \(UInt(bitPattern: setSize)) are too large")
        }
        guard count > 0 else { return }
        guard setSize > 0 else { throw CallError(RELUSV_ERROR_EMPTY, "set_size = 0: a set needs a member") }
        let (indices, over) = count.multipliedReportingOverflow(by: setSize)
        let (outputs, overOut) = count.multipliedReportingOverflow(by: v.columns)
        guard !over, !overOut, indices <= Int.max / 8, outputs <= Int.max / 8 else {
            throw CallError(RELUSV_ERROR_INVALID_ARGUMENT, "count x set_size or count x columns overflows")
        }
        let sets = try required(sets, "sets")
        let hi = try required(hi, "hi")
        try checkSetIndices(sets, count: count, setSize: setSize, rows: v.rows)
        let report = progress(progressFn, userData, total: count)
        guard case .double(let view) = v else {
            throw CallError(RELUSV_ERROR_DTYPE, "v must be RELUSV_FLOAT64 (the values of a set functional)")
        }
        try setExtremes(of: view, sets: sets, count: count, setSize: setSize, hi: hi, lo: lo, progress: report)
    }
}
