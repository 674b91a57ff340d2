import XCTest

@testable import ReluSVKit

/// Fits in the row space of the points (`RowSpace`): the reduction keeps every
/// approximant's action on the points and the layer's targets, and applies only
/// where the points have at most half as many rows as inputs.
final class RowSpaceFitTests: XCTestCase {
    func random(_ rows: Int, _ columns: Int, seed: UInt64) -> Matrix<Double> {
        let r = CounterRandom(seed: seed, stream: .factorInitialisation)
        var a = Matrix<Double>(rows: rows, columns: columns)
        for i in 0..<rows { for j in 0..<columns { a[i, j] = r.normal(row: i, column: j) } }
        return a
    }

    func testReductionKeepsActionsAndTargets() throws {
        let (m, n, rows, k) = (12, 40, 15, 5)
        let w = random(m, n, seed: 1)
        let x = random(rows, n, seed: 2)
        let layer = try w.withView { try ReluLayer(weight: $0, bias: (0..<m).map { Double($0) * 0.1 - 0.5 }, slope: 0) }
        try x.withView { view in
            let problem = try ReluBoundProblem(layer: layer, points: view, groupSize: 3)
            let space = try XCTUnwrap(RowSpace(problem: problem))
            XCTAssertEqual(space.basis.rows, rows)
            // the reduced layer's targets are the layer's
            try space.withProblem { reduced in
                for (a, b) in zip(reduced.y.storage, problem.y.storage) { XCTAssertEqual(a, b, accuracy: 1e-12) }
                XCTAssertEqual(reduced.groupSize, 3)
            }
            // an approximant's errors on the points, before and after reduce / lift
            let f = RankFactors(
                k: k, m: m, n: n, u: random(m, k, seed: 3).storage, v: random(k, n, seed: 4).storage)
            let lifted = space.lift(space.reduce(f))
            let before = f.withPointers { problem.evaluate(u: $0, v: $1, k: k).errors }
            let after = lifted.withPointers { problem.evaluate(u: $0, v: $1, k: k).errors }
            let reduced = space.reduce(f)
            let inSpace = try space.withProblem { p in reduced.withPointers { p.evaluate(u: $0, v: $1, k: k).errors } }
            for g in before.indices {
                XCTAssertEqual(after[g], before[g], accuracy: 1e-11 * max(1, before[g]), "group \(g)")
                XCTAssertEqual(inSpace[g], before[g], accuracy: 1e-11 * max(1, before[g]), "group \(g)")
            }
        }
    }

    func testOnlyWhereRowsAreAtMostHalfTheInputs() throws {
        let w = random(6, 20, seed: 5)
        let layer = try w.withView { try ReluLayer(weight: $0, bias: nil, slope: 0) }
        for (rows, expected) in [(10, true), (11, false)] {
            let x = random(rows, 20, seed: 6)
            try x.withView { view in
                let problem = try ReluBoundProblem(layer: layer, points: view)
                XCTAssertEqual(try RowSpace(problem: problem) != nil, expected, "\(rows) rows")
            }
        }
    }
}
