import CReluSV
import ReluSVKit

/// A validated `relusv_matrix`: a view in the matrix's own precision.
enum MatrixArgument {
    case float(MatrixView<Float>)
    case double(MatrixView<Double>)

    var rows: Int {
        switch self {
        case .float(let v): v.rows
        case .double(let v): v.rows
        }
    }
    var columns: Int {
        switch self {
        case .float(let v): v.columns
        case .double(let v): v.columns
        }
    }
    var dtype: Int32 {
        switch self {
        case .float: RELUSV_FLOAT32.rawValue.int32
        case .double: RELUSV_FLOAT64.rawValue.int32
        }
    }

    /// Checks a caller's matrix description: non-NULL, known dtype, positive
    /// column count, stride >= cols, addressable size; data may be NULL only
    /// when the matrix has no rows.
    init(_ pointer: UnsafePointer<relusv_matrix>?, _ name: String) throws {
        let m = try required(pointer, name).pointee
        // size_t fields arrive as Int: values above Int.max read as negative.
        guard m.rows >= 0, m.cols >= 0, m.row_stride >= 0 else {
            throw CallError(
                RELUSV_ERROR_SIZE_OVERFLOW,
                "\(name) of \(UInt(bitPattern: m.rows)) x \(UInt(bitPattern: m.cols)) "
                    + "(row_stride \(UInt(bitPattern: m.row_stride))) is too large")
        }
        guard m.cols > 0 else { throw CallError(RELUSV_ERROR_SHAPE, "\(name) has 0 columns") }
        let stride = m.row_stride == 0 ? m.cols : m.row_stride
        guard stride >= m.cols else {
            throw CallError(RELUSV_ERROR_SHAPE, "\(name) row_stride \(m.row_stride) is smaller than cols \(m.cols)")
        }
        let elementSize: Int
        switch m.dtype {
        case RELUSV_FLOAT32.rawValue.int32: elementSize = 4
        case RELUSV_FLOAT64.rawValue.int32: elementSize = 8
        default:
            throw CallError(
                RELUSV_ERROR_DTYPE, "\(name) has unknown dtype \(m.dtype) (expected RELUSV_FLOAT32 or RELUSV_FLOAT64)")
        }
        let rows = Int(m.rows)
        let cols = Int(m.cols)
        let strideInt = Int(stride)
        if rows > 0 {
            let (span, o1) = (rows - 1).multipliedReportingOverflow(by: strideInt)
            let (total, o2) = span.addingReportingOverflow(cols)
            let (bytes, o3) = total.multipliedReportingOverflow(by: elementSize)
            guard !o1, !o2, !o3, bytes <= Int(Int32.max) * 1 << 20, rows <= Int(Int32.max), cols <= Int(Int32.max),
                strideInt <= Int(Int32.max)
            else {
                throw CallError(
                    RELUSV_ERROR_SIZE_OVERFLOW, "\(name) of \(m.rows) x \(m.cols) (row_stride \(stride)) is too large")
            }
        }
        let data: UnsafeRawPointer
        if let d = m.data {
            data = d
        } else if rows == 0 {
            data = UnsafeRawPointer(bitPattern: 16)!  // never read: no rows
        } else {
            throw CallError(RELUSV_ERROR_NULL_POINTER, "\(name).data is NULL")
        }
        if elementSize == 4 {
            self = .float(
                MatrixView(
                    base: data.assumingMemoryBound(to: Float.self), rows: rows, columns: cols, rowStride: strideInt))
        } else {
            self = .double(
                MatrixView(
                    base: data.assumingMemoryBound(to: Double.self), rows: rows, columns: cols, rowStride: strideInt))
        }
    }
}

extension UInt32 {
    var int32: Int32 { Int32(bitPattern: self) }
}

/// Checks a dtype argument.
func dtypeBits(_ dtype: Int32) throws -> Int {
    switch dtype {
    case RELUSV_FLOAT32.rawValue.int32: return 32
    case RELUSV_FLOAT64.rawValue.int32: return 64
    default: throw CallError(RELUSV_ERROR_DTYPE, "unknown dtype \(dtype) (expected RELUSV_FLOAT32 or RELUSV_FLOAT64)")
    }
}

/// The engine's progress reporter for a C callback (nil: silent).
func progress(_ fn: relusv_progress_fn?, _ user: UnsafeMutableRawPointer?, total: Int) -> Progress {
    guard let fn else { return .silent }
    return Progress(total: total) { done, total in fn(user, done, total) == 0 }
}
