import XCTest

@testable import ReluSVKit

/// The circular-convolution spectrum (MATH.md §9) against the SVD of the
/// operator matrix built here by loops over positions, channels and taps.
final class ConvolutionSpectrumTests: XCTestCase {
    func kernel(_ cOut: Int, _ cIn: Int, _ kh: Int, _ kw: Int, seed: UInt64) -> Matrix<Double> {
        let random = CounterRandom(seed: seed, stream: .factorInitialisation)
        var k = Matrix<Double>(rows: cOut, columns: cIn * kh * kw)
        for i in 0..<k.rows { for j in 0..<k.columns { k[i, j] = random.normal(row: i, column: j) } }
        return k
    }

    /// `y[o, p, q] = sum K[o, i, a, c] x[i, (p + a) mod H, (q + c) mod W]` as a dense matrix.
    func denseOperator(_ k: Matrix<Double>, _ g: CircularConvolution) -> Matrix<Double> {
        let (h, w) = (g.height, g.width)
        var a = Matrix<Double>(rows: g.outChannels * h * w, columns: g.inChannels * h * w)
        for o in 0..<g.outChannels {
            for p in 0..<h {
                for q in 0..<w {
                    for i in 0..<g.inChannels {
                        for dy in 0..<g.kernelHeight {
                            for dx in 0..<g.kernelWidth {
                                let tap = k[o, (i * g.kernelHeight + dy) * g.kernelWidth + dx]
                                a[(o * h + p) * w + q, (i * h + (p + dy) % h) * w + (q + dx) % w] += tap
                            }
                        }
                    }
                }
            }
        }
        return a
    }

    func testSpectrumEqualsTheDenseOperatorSVD() throws {
        for (cOut, cIn, kh, kw, h, w) in [(3, 2, 2, 3, 4, 5), (2, 3, 3, 3, 3, 4), (2, 2, 1, 1, 2, 2)] {
            let g = try CircularConvolution(
                outChannels: cOut, inChannels: cIn, kernelHeight: kh, kernelWidth: kw,
                height: h, width: w)
            let k = kernel(cOut, cIn, kh, kw, seed: UInt64(h * w))
            let expected = try denseOperator(k, g).withView { try singularValues(of: $0) }
            for threads in [1, 2] {
                let got = try k.withView {
                    try circularConvolutionSingularValues(kernel: $0, geometry: g, threads: threads)
                }
                XCTAssertEqual(got.count, g.valueCount)
                for (x, y) in zip(got, expected) { XCTAssertEqual(x, y, accuracy: 1e-12 * expected[0]) }
            }
            let top = try k.withView { try circularConvolutionSingularValues(kernel: $0, geometry: g, top: 2) }
            XCTAssertEqual(top.count, 2)
            XCTAssertEqual(top[0], expected[0], accuracy: 1e-12 * expected[0])
        }
    }

    /// The grouped, strided operator: `y[o, p, q] = sum K[o, i, a, c] x[g C_in/G + i, (s p + a) mod H, (s q + c) mod W]`.
    func denseGroupedOperator(_ k: Matrix<Double>, _ g: CircularConvolution) -> Matrix<Double> {
        let (h, w, s) = (g.height, g.width, g.stride)
        let (oh, ow) = (h / s, w / s)
        let perGroup = g.outChannels / g.groups
        var a = Matrix<Double>(rows: g.outChannels * oh * ow, columns: g.groups * g.inChannels * h * w)
        for o in 0..<g.outChannels {
            let first = (o / perGroup) * g.inChannels
            for p in 0..<oh {
                for q in 0..<ow {
                    for i in 0..<g.inChannels {
                        for dy in 0..<g.kernelHeight {
                            for dx in 0..<g.kernelWidth {
                                let tap = k[o, (i * g.kernelHeight + dy) * g.kernelWidth + dx]
                                let column = ((first + i) * h + (s * p + dy) % h) * w + (s * q + dx) % w
                                a[(o * oh + p) * ow + q, column] += tap
                            }
                        }
                    }
                }
            }
        }
        return a
    }

    func testGroupedAndStridedSpectraEqualTheDenseOperatorSVD() throws {
        for (cOut, cIn, k, h, w, groups, stride) in [
            (4, 2, 3, 4, 6, 2, 1), (3, 1, 3, 5, 4, 3, 1), (3, 2, 3, 6, 4, 1, 2), (9, 2, 2, 4, 4, 1, 2),
            (4, 3, 3, 6, 6, 2, 3),
        ] {
            let g = try CircularConvolution(
                outChannels: cOut, inChannels: cIn, kernelHeight: k, kernelWidth: k, height: h, width: w,
                groups: groups, stride: stride)
            let kernel = kernel(cOut, cIn, k, k, seed: UInt64(h * w + groups))
            let expected = try denseGroupedOperator(kernel, g).withView { try singularValues(of: $0) }
            let got = try kernel.withView { try circularConvolutionSingularValues(kernel: $0, geometry: g, threads: 2) }
            XCTAssertEqual(got.count, g.valueCount)
            for (x, y) in zip(got, expected) { XCTAssertEqual(x, y, accuracy: 1e-12 * expected[0]) }
            for y in expected.dropFirst(got.count) { XCTAssertLessThan(y, 1e-12 * expected[0]) }
        }
    }

    func testRefusals() throws {
        XCTAssertThrowsError(
            try CircularConvolution(
                outChannels: 1, inChannels: 1, kernelHeight: 4, kernelWidth: 1,
                height: 3, width: 3))
        let g = try CircularConvolution(
            outChannels: 1, inChannels: 1, kernelHeight: 1, kernelWidth: 2, height: 3, width: 3)
        var k = Matrix<Double>(rows: 1, columns: 2)
        k[0, 1] = .nan
        XCTAssertThrowsError(try k.withView { try circularConvolutionSingularValues(kernel: $0, geometry: g) }) {
            XCTAssertEqual($0 as? EngineError, .nonFinite("the kernel contains NaN or infinity at row 0, column 1"))
        }
    }
}
