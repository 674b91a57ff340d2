/// The independent blocks of a matrix, and its SVD as the union of theirs.
///
/// Rows `i` and columns `j` are linked when `w[i, j] != 0`; the connected
/// components of that bipartite graph are the matrix's independent blocks: up
/// to a permutation of rows and columns, `w = diag(W_1, ..., W_B)`. Then
/// `W W^T` and `W^T W` are block diagonal too, so the singular values of `w`
/// are the union of the blocks' (MATH.md §9, grouped convolutions: the same
/// fact for a grouped kernel's block-diagonal kernel matrix), and singular
/// vectors of a block, placed on its rows and columns and zero elsewhere, are
/// singular vectors of `w`. Exact, not an approximation: a depthwise
/// convolution of 960 channels (a `960 x 8640` kernel matrix of 960 blocks
/// `1 x 9`) or a BatchNorm's diagonal costs its blocks' SVDs instead of one
/// dense SVD.
struct IndependentBlocks {
    /// Each block's rows and columns, ascending; blocks ordered by their first row or column.
    let blocks: [(rows: [Int], columns: [Int])]

    /// The number of singular pairs the blocks give, `sum_b min(m_b, n_b)`:
    /// `min(m, n)` unless zero rows or columns (blocks of one side only) or
    /// unbalanced blocks leave pairs that only a completion of the bases
    /// provides.
    var pairs: Int { blocks.reduce(0) { $0 + min($1.rows.count, $1.columns.count) } }

    /// The blocks of `w`, or nil when `w` is one block: at once when a row and a
    /// column have no zero (they link everything: a dense matrix costs one row
    /// and one column), else by a scan that stops as soon as every row and
    /// column is linked.
    static func of<Scalar: BLASScalar>(_ w: MatrixView<Scalar>) -> IndependentBlocks? {
        let m = w.rows
        let n = w.columns
        guard m > 0, n > 0, m + n > 2 else { return nil }
        let fullRow = (0..<m).contains { i in (0..<n).allSatisfy { w.row(i)[$0] != 0 } }
        if fullRow && (0..<n).contains(where: { j in (0..<m).allSatisfy { w.row($0)[j] != 0 } }) { return nil }
        var parent = [Int](0..<(m + n))
        var components = m + n
        func root(_ x: Int) -> Int {
            var x = x
            while parent[x] != x {
                parent[x] = parent[parent[x]]
                x = parent[x]
            }
            return x
        }
        for i in 0..<m {
            let row = w.row(i)
            for j in 0..<n where row[j] != 0 {
                let a = root(i)
                let b = root(m + j)
                guard a != b else { continue }
                parent[max(a, b)] = min(a, b)
                components -= 1
                if components == 1 { return nil }
            }
        }
        var index = [Int: Int]()
        var blocks: [(rows: [Int], columns: [Int])] = []
        for x in 0..<(m + n) {
            let r = root(x)
            let b: Int
            if let found = index[r] {
                b = found
            } else {
                b = blocks.count
                index[r] = b
                blocks.append(([], []))
            }
            if x < m { blocks[b].rows.append(x) } else { blocks[b].columns.append(x - m) }
        }
        return IndependentBlocks(blocks: blocks)
    }

    /// Block `b` of `a` (row-major `m x n`, leading dimension `n`), gathered row-major.
    func gather<Scalar: BLASScalar>(_ b: Int, from a: [Scalar], columns n: Int) -> [Scalar] {
        let (rows, columns) = blocks[b]
        var out = [Scalar](repeating: 0, count: rows.count * columns.count)
        for (r, i) in rows.enumerated() {
            for (c, j) in columns.enumerated() { out[r * columns.count + c] = a[i * n + j] }
        }
        return out
    }
}

/// The singular pairs of all blocks in the order of the union's SVD: by value
/// descending, ties by block and then by position within the block (a fixed
/// order, so the result is deterministic).
func unionOrder<Scalar: BLASScalar>(_ values: [[Scalar]]) -> [(block: Int, index: Int)] {
    var pairs: [(value: Scalar, block: Int, index: Int)] = []
    for (b, s) in values.enumerated() {
        for (i, v) in s.enumerated() { pairs.append((v, b, i)) }
    }
    pairs.sort { ($0.value, -$0.block, -$0.index) > ($1.value, -$1.block, -$1.index) }
    return pairs.map { ($0.block, $0.index) }
}

/// The row of each column's one nonzero entry of `w` (-1 for a zero
/// column), or nil when some column has two or more: the independent blocks
/// of such a `w` each have one row (a depthwise convolution's kernel matrix,
/// a diagonal), so `Q^T w` is one product per entry (`WeightedRegression`).
func columnOwners<Scalar: BLASScalar>(of w: Matrix<Scalar>) -> [Int]? {
    var owners = [Int](repeating: -1, count: w.columns)
    for i in 0..<w.rows {
        for j in 0..<w.columns where w[i, j] != 0 {
            guard owners[j] < 0 else { return nil }
            owners[j] = i
        }
    }
    return owners
}
