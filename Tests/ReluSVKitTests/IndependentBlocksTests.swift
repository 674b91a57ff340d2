import XCTest

@testable import ReluSVKit

/// The SVD of a matrix of independent blocks (`IndependentBlocks`) against
/// LAPACK's dense SVD of the same matrix, called here directly, and against
/// the defining properties of a thin SVD (orthonormal factors, `W = U S Vt`).
final class IndependentBlocksTests: XCTestCase {
    /// An `m x n` matrix with the given blocks (rows, columns) of normal entries, zero elsewhere.
    func blockMatrix(_ m: Int, _ n: Int, _ blocks: [([Int], [Int])], seed: UInt64) -> Matrix<Double> {
        let random = CounterRandom(seed: seed, stream: .factorInitialisation)
        var w = Matrix<Double>(rows: m, columns: n)
        for (rows, columns) in blocks {
            for i in rows { for j in columns { w[i, j] = random.normal(row: i, column: j) } }
        }
        return w
    }

    func lapackValues(_ w: Matrix<Double>) -> [Double] {
        var a = w.storage
        var s = [Double](repeating: 0, count: min(w.rows, w.columns))
        let info = a.withUnsafeMutableBufferPointer { ap in
            s.withUnsafeMutableBufferPointer { sp in
                Double.gesdd(
                    jobz: UInt8(ascii: "N"), m: w.rows, n: w.columns, a: ap.baseAddress!, lda: w.columns,
                    s: sp.baseAddress!, u: nil, ldu: max(w.rows, w.columns), vt: nil, ldvt: max(w.rows, w.columns))
            }
        }
        XCTAssertEqual(info, 0)
        return s
    }

    func checkSVD(_ w: Matrix<Double>, file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = lapackValues(w)
        let values = try w.withView { try singularValues(of: $0) }
        let svd = try w.withView { try thinSVD(of: $0) }
        let tol = 1e-13 * max(expected[0], 1)
        XCTAssertEqual(values.count, expected.count, file: file, line: line)
        XCTAssertEqual(svd.s.count, expected.count, file: file, line: line)
        for (x, y) in zip(values, expected) { XCTAssertEqual(x, y, accuracy: tol, file: file, line: line) }
        for (x, y) in zip(svd.s, expected) { XCTAssertEqual(x, y, accuracy: tol, file: file, line: line) }
        let p = svd.s.count
        for i in 0..<w.rows {
            for j in 0..<w.columns {
                let r = (0..<p).reduce(0.0) { $0 + svd.u[i, $1] * svd.s[$1] * svd.vt[$1, j] }
                XCTAssertEqual(r, w[i, j], accuracy: tol, "W = U S Vt at \(i), \(j)", file: file, line: line)
            }
        }
        for a in 0..<p {
            for b in 0..<p {
                let uu = (0..<w.rows).reduce(0.0) { $0 + svd.u[$1, a] * svd.u[$1, b] }
                let vv = (0..<w.columns).reduce(0.0) { $0 + svd.vt[a, $1] * svd.vt[b, $1] }
                XCTAssertEqual(uu, a == b ? 1 : 0, accuracy: 1e-13, "U^T U", file: file, line: line)
                XCTAssertEqual(vv, a == b ? 1 : 0, accuracy: 1e-13, "Vt Vt^T", file: file, line: line)
            }
        }
    }

    func testPermutedBlocksGiveTheDenseSVD() throws {
        // Blocks 2 x 3, 1 x 4, 3 x 1 and 2 x 2 on shuffled rows and columns of an 8 x 10 matrix.
        let w = blockMatrix(
            8, 10, [([5, 1], [9, 0, 4]), ([7], [2, 6, 3, 8]), ([0, 3, 6], [1]), ([2, 4], [5, 7])], seed: 3)
        let split = try XCTUnwrap(w.withView { IndependentBlocks.of($0) })
        XCTAssertEqual(split.blocks.count, 4)
        XCTAssertEqual(split.pairs, 2 + 1 + 1 + 2)  // fewer than min(8, 10): the thin SVD takes the dense path
        try checkSVD(w)
        // Square blocks fill min(m, n): the block path.
        let square = blockMatrix(6, 6, [([0, 4], [3, 5]), ([1, 2, 5], [0, 1, 4]), ([3], [2])], seed: 4)
        XCTAssertEqual(try XCTUnwrap(square.withView { IndependentBlocks.of($0) }).pairs, 6)
        try checkSVD(square)
    }

    func testDepthwiseKernelMatrix() throws {
        // Six channels of a depthwise 3x3 convolution: blocks 1 x 9 of a 6 x 54 kernel matrix.
        let w = blockMatrix(6, 54, (0..<6).map { ([$0], Array($0 * 9..<($0 + 1) * 9)) }, seed: 5)
        let split = try XCTUnwrap(w.withView { IndependentBlocks.of($0) })
        XCTAssertEqual(split.blocks.count, 6)
        XCTAssertEqual(split.pairs, 6)
        try checkSVD(w)
    }

    func testDiagonalWithZerosAndTies() throws {
        var w = Matrix<Double>(rows: 5, columns: 5)
        for (i, d) in [3.0, -2.0, 3.0, 0.0, 1.0].enumerated() { w[i, i] = d }
        try checkSVD(w)  // a zero row and column: the values padded, the thin SVD dense
        w[3, 3] = -0.5
        let svd = try w.withView { try thinSVD(of: $0) }
        XCTAssertEqual(svd.s, [3, 3, 2, 1, 0.5])
        XCTAssertEqual(svd.u[0, 0] * svd.vt[0, 0], 1)  // the tie in block order
        XCTAssertEqual(svd.u[1, 2] * svd.vt[2, 1], -1)
        try checkSVD(w)
    }

    func testConnectedMatrixIsOneBlock() {
        let w = blockMatrix(4, 7, [([0, 1, 2, 3], Array(0..<7))], seed: 6)
        XCTAssertNil(w.withView { IndependentBlocks.of($0) })
        var chain = Matrix<Double>(rows: 3, columns: 3)  // linked only through a chain of entries
        chain[0, 0] = 1
        chain[0, 1] = 1
        chain[1, 1] = 1
        chain[1, 2] = 1
        chain[2, 2] = 1
        XCTAssertNil(chain.withView { IndependentBlocks.of($0) })
    }
}
