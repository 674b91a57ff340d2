/// A read-only row-major matrix over memory the caller owns.
///
/// Row `i` starts at `base + i * rowStride`; columns are contiguous. Rows are
/// points (the NumPy / PyTorch convention), so an `(N, n)` view holds `N`
/// points of dimension `n`. The view never copies or frees the memory.
public struct MatrixView<Scalar: BLASScalar> {
    public let base: UnsafePointer<Scalar>
    public let rows: Int
    public let columns: Int
    /// Distance between the starts of consecutive rows, in elements (`>= columns`).
    public let rowStride: Int

    /// Creates a view; the caller guarantees that `rows * rowStride` elements
    /// (the last row needs only `columns`) are readable for the view's life.
    public init(base: UnsafePointer<Scalar>, rows: Int, columns: Int, rowStride: Int? = nil) {
        precondition(rows >= 0 && columns >= 0, "negative matrix size")
        let stride = rowStride ?? columns
        precondition(stride >= columns, "row stride shorter than a row")
        self.base = base
        self.rows = rows
        self.columns = columns
        self.rowStride = stride
    }

    /// Pointer to the first element of row `i`.
    @inlinable public func row(_ i: Int) -> UnsafePointer<Scalar> { base + i * rowStride }

    /// The view of rows `range`, sharing memory with `self`.
    public func rows(_ range: Range<Int>) -> MatrixView {
        MatrixView(base: base + range.lowerBound * rowStride, rows: range.count, columns: columns, rowStride: rowStride)
    }
}

/// A dense row-major matrix owned by the engine (scratch space and results).
public struct Matrix<Scalar: BLASScalar> {
    public private(set) var storage: [Scalar]
    public let rows: Int
    public let columns: Int

    public init(rows: Int, columns: Int, repeating value: Scalar = 0) {
        self.rows = rows
        self.columns = columns
        storage = Array(repeating: value, count: rows * columns)
    }

    public init(rows: Int, columns: Int, storage: [Scalar]) {
        precondition(storage.count == rows * columns, "storage does not match the shape")
        self.rows = rows
        self.columns = columns
        self.storage = storage
    }

    public subscript(i: Int, j: Int) -> Scalar {
        get { storage[i * columns + j] }
        set { storage[i * columns + j] = newValue }
    }

    /// Calls `body` with a view of this matrix.
    public func withView<R>(_ body: (MatrixView<Scalar>) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer { buffer in
            try body(MatrixView(base: buffer.baseAddress!, rows: rows, columns: columns))
        }
    }

    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (inout UnsafeMutableBufferPointer<Scalar>) throws -> R
    ) rethrows -> R {
        try storage.withUnsafeMutableBufferPointer(body)
    }
}
