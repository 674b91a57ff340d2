/// A streaming estimator of the Gaussian mean width of a finite set.
///
/// For `S` fixed directions `g_1..g_S ~ N(0, I_n)` drawn by `CounterRandom`
/// from `seed`, the state is, per direction, the running maximum and minimum
/// of `<g_j, x>` over all points `x` seen so far (MATH.md §4):
///
///     w_j = max_i <g_j, x_i> - min_i <g_j, x_i> = sup_{u in K - K} <g_j, u>.
///
/// Points arrive in batches of any size (rows are points); each batch is
/// processed in blocks of at most `blockRows` rows with one GEMM
/// `P = G X_block^T` (`S x block`) and a row-wise max/min, so the extra memory
/// per update is `max(S, scratchBudget)` products (8 MiB in `Double` for
/// `S <= 2^20`) and never `O(S * N)`. The directions take `S * n` values,
/// at most `maximumElements`; `memoryNeeded` is the whole footprint, checked
/// against `MemoryBudget` before anything is allocated. Two accumulators with the
/// same directions merge exactly, by elementwise max/min, in any order.
/// Streaming computes the same extremes as a single call on the whole set,
/// up to the rounding of single products: BLAS may round `<g_j, x>`
/// differently (by a few units of `eps * |g_j| |x|`) depending on the shape
/// of the call that computes it.
///
/// Products are formed in `Scalar` (the caller's precision); the extremes are
/// kept in `Double`.
public final class WidthAccumulator<Scalar: BLASScalar> {
    public let dimension: Int
    public let samples: Int
    public let seed: UInt64
    /// Number of points seen.
    public var count: Int { lock.withLock { state.count } }
    /// Per-direction running maximum of `<g_j, x>`.
    public var maxima: [Double] { lock.withLock { state.maxima } }
    /// Per-direction running minimum of `<g_j, x>`.
    public var minima: [Double] { lock.withLock { state.minima } }
    /// Count and extremes, read and written only under `lock`, so that calls
    /// from several threads on one accumulator lose no points.
    private var state: (count: Int, maxima: [Double], minima: [Double])
    private let lock = Lock()
    /// The directions, `samples x dimension`, row-major.
    private let directions: ScratchBuffer<Scalar>
    /// `||g_j||` of the directions as stored (in `Scalar`), for the spherical width.
    private let directionNorms: [Double]
    /// Rows per GEMM block.
    public let blockRows: Int

    /// Largest number of directions an accumulator accepts.
    public static var maximumSamples: Int { 1 << 24 }
    /// Largest dimension an accumulator accepts.
    public static var maximumDimension: Int { Int(Int32.max) }

    /// A consistent copy of the count and extremes.
    public var snapshot: (count: Int, maxima: [Double], minima: [Double]) { lock.withLock { state } }

    /// Largest `samples x dimension` (direction values) an accumulator
    /// accepts: 2 GiB of `Double`, checked before anything is allocated (and
    /// before a state claiming more is read).
    public static var maximumElements: Int { 1 << 28 }

    /// Scratch elements per block (`S * blockRows`): 8 MiB in `Double`; one
    /// row per block (`S` elements) when `S` exceeds it.
    public static var scratchBudget: Int { 1 << 20 }

    /// Bytes an accumulator holds (directions, extremes, norms) plus one
    /// update's scratch.
    public static func memoryNeeded(dimension: Int, samples: Int) -> Double {
        let s = Double(samples)
        return s * Double(dimension) * Double(MemoryLayout<Scalar>.stride) + 5 * s * 8
            + Double(Swift.max(samples, scratchBudget)) * Double(MemoryLayout<Scalar>.stride)
    }

    /// Checks `dimension` and `samples` against the documented limits and the
    /// memory budget, before any allocation.
    public static func validate(dimension: Int, samples: Int) throws {
        guard dimension > 0 else { throw EngineError.invalidArgument("dimension must be positive, got \(dimension)") }
        guard samples > 0 else { throw EngineError.invalidArgument("samples must be positive, got \(samples)") }
        guard samples <= maximumSamples else {
            throw EngineError.invalidArgument("samples = \(samples) exceeds the limit of \(maximumSamples)")
        }
        guard dimension <= maximumDimension else {
            throw EngineError.invalidArgument("dimension = \(dimension) exceeds the limit of \(maximumDimension)")
        }
        let (elements, overflow) = dimension.multipliedReportingOverflow(by: samples)
        guard !overflow, elements <= maximumElements else {
            throw EngineError.outOfMemory(
                "samples x dimension = \(samples) x \(dimension) direction values exceed the limit of \(maximumElements)"
            )
        }
        try MemoryBudget.require(
            bytes: memoryNeeded(dimension: dimension, samples: samples),
            for: "a width accumulator of \(samples) directions in dimension \(dimension)")
    }

    /// `progress` is checked for cancellation while the directions are drawn.
    public init(dimension: Int, samples: Int, seed: UInt64, progress: Progress = .silent) throws {
        try Self.validate(dimension: dimension, samples: samples)
        let elements = dimension * samples
        self.dimension = dimension
        self.samples = samples
        self.seed = seed
        state = (0, Array(repeating: -.infinity, count: samples), Array(repeating: .infinity, count: samples))
        // Filled through a pointer by concrete loops: element-wise generic
        // code is slow when not specialised (callers in other modules).
        directions = try ScratchBuffer(count: elements, purpose: "\(samples) x \(dimension) directions")
        // In chunks of rows (the same values: the generator is counter-based), each a cancellation point.
        let random = CounterRandom(seed: seed, stream: .widthDirections)
        let chunk = max(1, Self.scratchBudget / dimension)
        for first in stride(from: 0, to: samples, by: chunk) {
            try progress.checkCancelled()
            random.fillNormals(
                directions.pointer + first * dimension, firstRow: first,
                rows: min(chunk, samples - first), columns: dimension)
        }
        directionNorms = (0..<samples).map { [directions] j in
            RowExtremes.norm(directions.pointer + j * dimension, count: dimension)
        }
        blockRows = max(1, Self.scratchBudget / samples)
    }

    /// Adds the rows of `x` (shape `(N, dimension)`) to the set.
    ///
    /// The update is all-or-nothing: on an error (non-finite data, overflow,
    /// cancellation) the accumulator is left as it was.
    public func update(_ x: MatrixView<Scalar>, progress: Progress = .silent) throws {
        guard x.columns == dimension else {
            throw EngineError.shape("x has \(x.columns) columns but the accumulator has dimension \(dimension)")
        }
        guard x.rows > 0 else { return }
        // Extremes of this batch alone, merged into the state at the end.
        var newMax = [Double](repeating: -.infinity, count: samples)
        var newMin = [Double](repeating: .infinity, count: samples)
        let block = min(blockRows, x.rows)
        // Written by the GEMM (beta = 0) before it is read: no initialisation.
        let products = try ScratchBuffer<Scalar>(count: samples * block, purpose: "\(samples) x \(block) products")
        let scratch = products.pointer
        let g = directions.pointer
        do {
            var start = 0
            while start < x.rows {
                let b = min(block, x.rows - start)
                Scalar.gemm(
                    transA: false, transB: true, m: samples, n: b, k: dimension,
                    alpha: 1, a: g, lda: dimension,
                    b: x.row(start), ldb: x.rowStride,
                    beta: 0, c: scratch, ldc: b)
                for j in 0..<samples {
                    let (hi, lo, finite) = RowExtremes.of(scratch + j * b, count: b)
                    guard finite else { throw Self.diagnoseNonFinite(x.rows(start..<(start + b)), offset: start) }
                    newMax[j] = Swift.max(newMax[j], hi)
                    newMin[j] = Swift.min(newMin[j], lo)
                }
                start += b
                try progress.advance(to: start)
            }
        }
        try mergeValidated(maxima: newMax, minima: newMin, count: x.rows)
    }

    /// Merges the points seen by `other` (same dimension, samples and seed).
    public func merge(_ other: WidthAccumulator<Scalar>) throws {
        guard other !== self else {
            throw EngineError.invalidArgument("cannot merge an accumulator into itself: its points would count twice")
        }
        let snapshot = other.snapshot
        try merge(
            maxima: snapshot.maxima, minima: snapshot.minima, count: snapshot.count,
            dimension: other.dimension, seed: other.seed)
    }

    /// Merges raw extremes of an accumulator with the same directions, as an
    /// all-reduce across data-parallel workers produces them.
    public func merge(
        maxima otherMax: [Double], minima otherMin: [Double], count otherCount: Int,
        dimension otherDimension: Int, seed otherSeed: UInt64
    ) throws {
        guard otherDimension == dimension, otherSeed == seed, otherMax.count == samples, otherMin.count == samples
        else {
            throw EngineError.mismatch(
                "cannot merge accumulators with different directions: (dimension \(otherDimension), samples \(otherMax.count), seed \(otherSeed)) vs (dimension \(dimension), samples \(samples), seed \(seed))"
            )
        }
        guard otherCount >= 0 else { throw EngineError.invalidArgument("negative point count") }
        guard !otherMax.contains(where: \.isNaN), !otherMin.contains(where: \.isNaN) else {
            throw EngineError.nonFinite("extremes contain NaN")
        }
        if otherCount == 0 {
            guard otherMax.allSatisfy({ $0 == -.infinity }), otherMin.allSatisfy({ $0 == .infinity }) else {
                throw EngineError.invalidArgument(
                    "extremes of 0 points must be -infinity (maxima) and +infinity (minima)")
            }
        } else {
            guard otherMax.allSatisfy(\.isFinite), otherMin.allSatisfy(\.isFinite) else {
                throw EngineError.invalidArgument("extremes of \(otherCount) points must be finite")
            }
            guard zip(otherMax, otherMin).allSatisfy({ $0 >= $1 }) else {
                throw EngineError.invalidArgument("a maximum is below its minimum")
            }
        }
        try mergeValidated(maxima: otherMax, minima: otherMin, count: otherCount)
    }

    /// Folds checked extremes into the state, atomically.
    private func mergeValidated(maxima otherMax: [Double], minima otherMin: [Double], count otherCount: Int) throws {
        try lock.withLock {
            let newCount = try Self.total(state.count, otherCount)
            for j in 0..<samples {
                state.maxima[j] = Swift.max(state.maxima[j], otherMax[j])
                state.minima[j] = Swift.min(state.minima[j], otherMin[j])
            }
            state.count = newCount
        }
    }

    /// The per-direction widths `w_j = max_j - min_j`; divided by `||g_j||`
    /// for the spherical width (directions `theta_j = g_j / ||g_j||`).
    public func sampleWidths(spherical: Bool) throws -> [Double] {
        let snapshot = self.snapshot
        guard snapshot.count > 0 else {
            throw EngineError.empty(
                "no points have been added to the accumulator: the width of an empty set is undefined")
        }
        var widths = zip(snapshot.maxima, snapshot.minima).map { $0 - $1 }
        guard widths.allSatisfy(\.isFinite) else {  // finite products whose difference is not
            throw EngineError.overflow("a width max - min exceeds the range of Double; rescale the data")
        }
        if spherical {
            for j in 0..<samples { widths[j] /= directionNorms[j] }
        }
        return widths
    }

    /// The Monte-Carlo estimate with `trim` cut at each end (MATH.md §4).
    public func estimate(trim: Double, spherical: Bool) throws -> SampleSummary {
        try SampleSummary(sampleWidths(spherical: spherical), trim: trim)
    }

    /// `a + b` points, or an error when the count does not fit in `Int`.
    private static func total(_ a: Int, _ b: Int) throws -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        guard !overflow else {
            throw EngineError.invalidArgument("the number of points (\(a) + \(b)) overflows a 64-bit count")
        }
        return sum
    }

    private static func diagnoseNonFinite(_ x: MatrixView<Scalar>, offset: Int) -> EngineError {
        for i in 0..<x.rows {
            let r = x.row(i)
            for c in 0..<x.columns where !r[c].isFinite { return .nonFiniteData(row: offset + i, column: c) }
        }
        return .overflow("a product <g, x> exceeds the range of \(Scalar.self); rescale the data")
    }
}

/// The Gaussian (or spherical) mean width of the finite set `x` (rows are
/// points) from `samples` directions drawn with `seed`; see `WidthAccumulator`.
public func gaussianMeanWidth<Scalar: BLASScalar>(
    of x: MatrixView<Scalar>, samples: Int = 100, seed: UInt64, trim: Double = 0.1,
    spherical: Bool = false, progress: Progress = .silent
) throws -> (summary: SampleSummary, sampleWidths: [Double]) {
    try SampleSummary.checkTrim(trim)
    guard x.rows > 0 else { throw EngineError.empty("x has no rows: the width of an empty set is undefined") }
    let accumulator = try WidthAccumulator<Scalar>(
        dimension: x.columns, samples: samples, seed: seed, progress: progress)
    try accumulator.update(x, progress: progress)
    let widths = try accumulator.sampleWidths(spherical: spherical)
    return (try SampleSummary(widths, trim: trim), widths)
}
