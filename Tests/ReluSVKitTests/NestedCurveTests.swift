import XCTest

@testable import ReluSVKit

/// The blocked pass of `NestedCurve` (MATH.md §3) against the errors of each
/// approximant computed on its own by direct loops (`maxError` of `ReluSpectraTests`).
extension ReluSpectraTests {
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
                let direct = maxError(w, b, x, dense(f))
                XCTAssertEqual(bounds[q], direct, accuracy: 1e-12 * max(1, direct), "count \(c)")
            }
        }
    }
}
