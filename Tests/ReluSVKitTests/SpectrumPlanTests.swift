import XCTest

@testable import ReluSVKit

/// How a curve's plan spends the work budget (`SpectrumPlan`, docs/engine.md "Budgets").
final class SpectrumPlanTests: XCTestCase {
    /// Room in the work budget raises each fit's cap (`maxRaise`) and, from
    /// `longFitRaise` on, judges the least-squares phase by its loss and adds
    /// the weighted start; a curve at or over its budget keeps the defaults.
    func testRoomInTheBudgetLengthensTheFits() throws {
        func plan(m: Int, n: Int, N: Int, settings: SpectrumSettings = SpectrumSettings()) throws -> SpectrumPlan {
            let (_, _, xs, layer) = try WeightedCandidateTests.scalarData(Double.self, m: m, n: n, N: N, seed: 5)
            let ks = Array(0..<min(m, n))
            return try Matrix(rows: N, columns: n, storage: xs).withView { view in
                let problem = try ReluBoundProblem(layer: layer, points: view)
                let weighting = SpectrumPlan.weighting(points: N, outputs: m, inputs: n, ks: ks, settings: settings)
                return SpectrumPlan(problem: problem, ks: ks, rank: min(m, n), settings: settings, weighting: weighting)
            }
        }
        let defaults = FitSettings()
        let small = try plan(m: 16, n: 16, N: 200)
        XCTAssertEqual(small.fit.maxSteps, 4 * defaults.maxSteps)
        XCTAssertEqual(small.fit.leastSquaresPatience, 4 * defaults.leastSquaresPatience)
        XCTAssertEqual(small.fit.patience, defaults.patience)  // only a time budget raises the refinement's
        XCTAssertTrue(small.fit.leastSquaresByLoss)
        XCTAssertTrue(small.weightedStart)
        XCTAssertEqual(small.starts, 3)
        var timed = SpectrumSettings()
        timed.timeBudget = 600
        let generous = try plan(m: 16, n: 16, N: 200, settings: timed)
        XCTAssertEqual(generous.fit.maxSteps, 4 * defaults.maxSteps)
        XCTAssertEqual(generous.fit.patience, 4 * defaults.patience)
        XCTAssertEqual(generous.fit.stepHalvings, defaults.stepHalvings + 2)
        var short = SpectrumSettings()
        short.fit.maxSteps = 50  // a caller's lower cap is kept
        let survey = try plan(m: 16, n: 16, N: 200, settings: short)
        XCTAssertEqual(survey.fit.maxSteps, 50)
        XCTAssertFalse(survey.fit.leastSquaresByLoss)
        XCTAssertFalse(survey.weightedStart)
        var noData = SpectrumSettings()
        noData.dataCandidates = false
        XCTAssertFalse(try plan(m: 16, n: 16, N: 200, settings: noData).weightedStart)
        let suite = try plan(m: 100, n: 100, N: 500)  // the benchmark suite's layers: over budget
        XCTAssertLessThanOrEqual(suite.fit.maxSteps, defaults.maxSteps)
        XCTAssertFalse(suite.fit.leastSquaresByLoss)
        XCTAssertFalse(suite.weightedStart)
        XCTAssertEqual(suite.starts, 2)
    }
}
