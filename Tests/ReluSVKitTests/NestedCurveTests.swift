import XCTest

@testable import ReluSVKit

/// The blocked pass of `NestedCurve` (MATH.md §3) against the errors of each
/// approximant computed on its own by direct loops.
extension ReluSpectraTests {
    /// `max_x ||relu(W x + b) - relu(L x + b)||` with `L = U V` by direct loops.
    func maxFactorError(_ w: Matrix<Double>, _ b: [Double], _ x: Matrix<Double>, _ f: RankFactors<Double>) -> Double {
        var worst = 0.0
        for i in 0..<x.rows {
            var s = 0.0
            for r in 0..<w.rows {
                var wx = b[r]
                var lx = b[r]
                for c in 0..<w.columns {
                    wx += w[r, c] * x[i, c]
                    var l = 0.0
                    for q in 0..<f.k { l += f.u[r * f.k + q] * f.v[q * f.n + c] }
                    lx += l * x[i, c]
                }
                let d = max(wx, 0) - max(lx, 0)
                s += d * d
            }
            worst = max(worst, s.squareRoot())
        }
        return worst
    }

    /// A start of rank 3 plus singular pairs 3 ..< 3 + c of `W`, at uneven
    /// counts (repeats and gaps included), over more rows than one block.
    func testBlockedExtensionsEqualDirectErrors() throws {
        let m = 13
        let n = 11
        let N = 300
        let w = gaussian(m, n, seed: 1, scale: 0.3)
        let x = gaussian(N, n, seed: 2)
        let b = (0..<m).map { 0.1 * Double($0 % 3) - 0.1 }
        let start = RankFactors(
            k: 3, m: m, n: n, u: gaussian(m, 3, seed: 3, scale: 0.2).storage,
            v: gaussian(3, n, seed: 4, scale: 0.2).storage)
        try x.withView { xv in
            let layer = try w.withView { try ReluLayer(weight: $0, bias: b, slope: 0) }
            let problem = try ReluBoundProblem(layer: layer, points: xv)
            let svd = try w.withView { try thinSVD(of: $0) }
            let basis = CandidateBasis.svd(svd, points: xv)
            let counts = [0, 1, 1, 4, 8]
            let curve = try NestedCurve(problem: problem, basis: basis, first: 3, counts: counts, start: start)
            XCTAssertLessThan(curve.blockRows, N)
            try curve.fill(rows: 0..<N) {}
            let bounds = curve.bounds()
            for (q, c) in counts.enumerated() {
                let f = start.extended(by: basis, pairs: 3..<(3 + c))
                let direct = maxFactorError(w, b, x, f)
                XCTAssertEqual(bounds[q], direct, accuracy: 1e-12 * max(1, direct), "count \(c)")
            }
        }
    }
}
