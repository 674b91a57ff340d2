import COpenBLAS

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The exact singular values of a stride-1 circular convolution (MATH.md §9,
/// after Sedghi, Gupta and Long, ICLR 2019).
///
/// A kernel `K` of shape `(C_out, C_in, kh, kw)` acting on `C_in x H x W`
/// inputs with circular padding is the linear operator `A_K`; for every
/// frequency `(u, v)` in `[0, H) x [0, W)` let
///
///     F(u, v) = sum_{a < kh, c < kw} K[:, :, a, c] exp(-2 pi i (u a / H + v c / W))
///
/// (`C_out x C_in`, complex). The singular values of `A_K` are the union over
/// all frequencies of the singular values of `F(u, v)`: `H W min(C_out, C_in)`
/// values. Cross-correlation (as `torch` computes) and any circular shift of
/// the output give the same values (conjugated `F`, unitary shifts).
///
/// Phases: the taps are copied (and checked for NaN) into a `(C_out C_in) x
/// (kh kw)` matrix; the frequencies are reduced to one per conjugate pair
/// (`F(-u, -v) = conj F(u, v)` for a real kernel, same singular values);
/// blocks of frequencies are evaluated by one real GEMM of the taps against a
/// table of cosines and sines (the direct sum over `kh kw` taps, no FFT), then
/// each `F(u, v)` goes to LAPACK's complex `?gesdd` (values only). Blocks run
/// on worker threads; the values are finally sorted descending.

/// Complex singular values in the precision of `Self` (LAPACK `cgesdd` / `zgesdd`).
public protocol ComplexSingularValueScalar: BLASScalar {
    /// The singular values of the row-major `m x n` complex matrix `a`
    /// (interleaved real and imaginary parts, overwritten), descending, into
    /// `s` (`min(m, n)` values). Returns LAPACK's `info` (0 on success).
    static func complexSingularValues(m: Int, n: Int, a: UnsafeMutablePointer<Self>, s: UnsafeMutablePointer<Self>)
        -> Int32
}

extension Float: ComplexSingularValueScalar {
    public static func complexSingularValues(
        m: Int, n: Int, a: UnsafeMutablePointer<Float>,
        s: UnsafeMutablePointer<Float>
    ) -> Int32 {
        // C99 complex arguments arrive as OpaquePointer: interleaved (real, imag) pairs.
        LAPACKE_cgesdd(
            LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "N")), Int32(m), Int32(n), OpaquePointer(a), Int32(n), s,
            nil, Int32(max(m, n)), nil, Int32(max(m, n)))
    }
}

extension Double: ComplexSingularValueScalar {
    public static func complexSingularValues(
        m: Int, n: Int, a: UnsafeMutablePointer<Double>,
        s: UnsafeMutablePointer<Double>
    ) -> Int32 {
        // C99 complex arguments arrive as OpaquePointer: interleaved (real, imag) pairs.
        LAPACKE_zgesdd(
            LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "N")), Int32(m), Int32(n), OpaquePointer(a), Int32(n), s,
            nil, Int32(max(m, n)), nil, Int32(max(m, n)))
    }
}

/// The geometry of a circular convolution: kernel `(C_out, C_in, kh, kw)` on `H x W` inputs.
public struct CircularConvolution: Sendable {
    public let outChannels: Int
    public let inChannels: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let height: Int
    public let width: Int

    /// Checks the sizes: all positive, the kernel no larger than the input
    /// (a larger kernel would wrap taps onto each other).
    public init(outChannels: Int, inChannels: Int, kernelHeight: Int, kernelWidth: Int, height: Int, width: Int) throws
    {
        guard outChannels > 0 else { throw EngineError.empty("the kernel has no output channels (0 rows)") }
        for (value, name) in [
            (outChannels, "C_out"), (inChannels, "C_in"), (kernelHeight, "kh"), (kernelWidth, "kw"),
            (height, "H"), (width, "W"),
        ] where value < 1 {
            throw EngineError.invalidArgument("\(name) must be positive, got \(value)")
        }
        guard kernelHeight <= height, kernelWidth <= width else {
            throw EngineError.invalidArgument(
                "the kernel (\(kernelHeight) x \(kernelWidth)) is larger than the input (\(height) x \(width)); "
                    + "a circular convolution would wrap its taps onto each other")
        }
        self.outChannels = outChannels
        self.inChannels = inChannels
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.height = height
        self.width = width
    }

    /// The kernel matrix `K_mat` (`rows x columns`): `C_out x (C_in kh kw)`.
    public func checkKernel(rows: Int, columns: Int) throws {
        guard rows == outChannels, columns == inChannels * taps else {
            throw EngineError.shape(
                "the kernel matrix is \(rows) x \(columns) but (C_out, C_in kh kw) = (\(outChannels), \(inChannels * taps)) "
                    + "for in_channels x kernel_height x kernel_width = \(inChannels) x \(kernelHeight) x \(kernelWidth)"
            )
        }
    }

    /// The number `top` of largest values requested: in `[1, H W min(C_out, C_in)]`.
    public func checkTop(_ top: Int) throws {
        guard top >= 1 else {
            throw EngineError.invalidArgument(
                "k = \(top) is out of range [1, H W min(C_out, C_in)] = [1, \(valueCount)]")
        }
        guard top <= valueCount else {
            throw EngineError.invalidArgument("k = \(top) exceeds H W min(C_out, C_in) = \(valueCount)")
        }
    }

    /// `min(C_out, C_in)`: singular values per frequency.
    public var valuesPerFrequency: Int { min(outChannels, inChannels) }
    /// `H W min(C_out, C_in)`: singular values of the operator.
    public var valueCount: Int { height * width * valuesPerFrequency }
    var taps: Int { kernelHeight * kernelWidth }
    var pairs: Int { outChannels * inChannels }

    /// Frequencies per block: about 2^19 scalars of GEMM output per block.
    var blockSize: Int { max(1, min(height * width, (1 << 19) / (2 * pairs))) }

    /// Scratch scalars of one worker: its GEMM output, twiddle table, one `F` and its values.
    var scratchPerWorker: Int { blockSize * 2 * (pairs + taps) + 2 * pairs + valuesPerFrequency }

    /// Frequency classes (one per conjugate pair) and the blocks they are evaluated in.
    var classCount: Int { height * width / 2 + 2 }
    var blockCount: Int { (classCount + blockSize - 1) / blockSize }

    /// Worker threads for `threads` requested (0: one per core), at most one per block.
    func workers(threads: Int) -> Int {
        let cores = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        return max(1, min(threads > 0 ? threads : cores, blockCount))
    }

    /// Scalars the spectrum needs at most: the values with their multiplicities (twice, for
    /// the per-class results and the sorted output) plus every worker's scratch.
    public func memoryScalars(threads: Int) -> Double {
        2 * Double(valueCount) + Double(workers(threads: threads)) * Double(scratchPerWorker)
    }
}

/// One frequency per conjugate pair: `(u, v)` and how many frequencies it
/// stands for (1 when `(u, v) = (-u, -v)` mod `(H, W)`, else 2).
func conjugateFrequencyClasses(height: Int, width: Int) -> [(u: Int, v: Int, multiplicity: Int)] {
    var classes: [(u: Int, v: Int, multiplicity: Int)] = []
    classes.reserveCapacity(height * width / 2 + 2)
    for u in 0..<height {
        for v in 0..<width {
            let index = u * width + v
            let partner = ((height - u) % height) * width + (width - v) % width
            if index < partner { classes.append((u, v, 2)) } else if index == partner { classes.append((u, v, 1)) }
        }
    }
    return classes
}

/// The kernel's taps as a contiguous `(C_out C_in) x (kh kw)` matrix, checked for NaN / infinity.
/// `kernel` is `K_mat`: `C_out` rows of `C_in kh kw` values.
func kernelTaps<Scalar: BLASScalar>(_ kernel: MatrixView<Scalar>, _ g: CircularConvolution) throws -> [Scalar] {
    try g.checkKernel(rows: kernel.rows, columns: kernel.columns)
    var taps = [Scalar](repeating: 0, count: g.pairs * g.taps)
    for o in 0..<kernel.rows {
        let row = kernel.row(o)
        for j in 0..<kernel.columns {
            guard row[j].isFinite else {
                throw EngineError.nonFinite("the kernel contains NaN or infinity at row \(o), column \(j)")
            }
            taps[o * kernel.columns + j] = row[j]
        }
    }
    return taps
}

/// The `(kh kw) x 2B` table of `cos` and `-sin` of `2 pi (u a / H + v c / W)`
/// for the block's frequencies (columns `f` and `B + f`), angles reduced
/// exactly in integers before the division.
func twiddleTable<Scalar: BLASScalar>(
    _ g: CircularConvolution, _ block: ArraySlice<(u: Int, v: Int, multiplicity: Int)>,
    into table: UnsafeMutablePointer<Scalar>
) {
    let b = block.count
    let hw = g.height * g.width
    for a in 0..<g.kernelHeight {
        for c in 0..<g.kernelWidth {
            let row = table + (a * g.kernelWidth + c) * 2 * b
            for (f, freq) in block.enumerated() {
                // u a / H + v c / W = ((u a mod H) W + (v c mod W) H) / (H W), in [0, 2).
                let numerator = (freq.u * a % g.height) * g.width + (freq.v * c % g.width) * g.height
                let angle = 2 * Double.pi * Double(numerator % hw) / Double(hw)
                row[f] = Scalar(cos(angle))
                row[b + f] = Scalar(-sin(angle))
            }
        }
    }
}

/// The singular values of `F(u, v)` for the frequencies of `block`, written
/// to `values` (`min(C_out, C_in)` per frequency, in block order).
func blockSingularValues<Scalar: ComplexSingularValueScalar>(
    _ g: CircularConvolution, taps: UnsafePointer<Scalar>, block: ArraySlice<(u: Int, v: Int, multiplicity: Int)>,
    scratch: UnsafeMutablePointer<Scalar>, values: UnsafeMutablePointer<Scalar>
) throws {
    let b = block.count
    let t = g.taps
    let pairs = g.pairs
    let p = g.valuesPerFrequency
    let table = scratch
    let product = scratch + t * 2 * b
    let f = product + pairs * 2 * b
    let s = f + 2 * pairs
    twiddleTable(g, block, into: table)
    // product[(o, i), f] = Re F_f[o, i], product[(o, i), B + f] = Im F_f[o, i].
    Scalar.gemm(
        transA: false, transB: false, m: pairs, n: 2 * b, k: t, alpha: 1, a: taps, lda: t,
        b: table, ldb: 2 * b, beta: 0, c: product, ldc: 2 * b)
    for index in 0..<b {
        for pair in 0..<pairs {
            f[2 * pair] = product[pair * 2 * b + index]
            f[2 * pair + 1] = product[pair * 2 * b + b + index]
        }
        let info = Scalar.complexSingularValues(m: g.outChannels, n: g.inChannels, a: f, s: s)
        guard info == 0 else {
            throw EngineError.lapackFailure(routine: Scalar.self == Float.self ? "cgesdd" : "zgesdd", info: info)
        }
        (values + index * p).update(from: s, count: p)
    }
}

/// The singular values of the stride-1 circular convolution with kernel
/// matrix `kernel` (`K_mat`, `C_out x C_in kh kw`) on `H x W` inputs,
/// descending: all `H W min(C_out, C_in)` of them, or the largest `top`.
///
/// Computed in `Scalar` (float32 kernels with `cgesdd`, float64 with
/// `zgesdd`) on `threads` worker threads (0: one per core). `progress` counts
/// frequency classes and may cancel between blocks. Scratch memory is
/// checked before it is allocated: the values per frequency class plus
/// `scratchPerWorker` per thread.
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
public func circularConvolutionSingularValues<Scalar: ComplexSingularValueScalar>(
    kernel: MatrixView<Scalar>, geometry g: CircularConvolution, top: Int? = nil, threads: Int = 0,
    progress: Progress = .silent
) throws -> [Scalar] {
    if let top { try g.checkTop(top) }
    var taps = try kernelTaps(kernel, g)
    let classes = conjugateFrequencyClasses(height: g.height, width: g.width)
    let p = g.valuesPerFrequency
    let blocks = stride(from: 0, to: classes.count, by: g.blockSize).map { $0..<min($0 + g.blockSize, classes.count) }
    let workers = g.workers(threads: threads)
    let perClass = try ScratchBuffer<Scalar>(count: classes.count * p, purpose: "the singular values per frequency")
    let scratch = try ScratchBuffer<Scalar>(count: workers * g.scratchPerWorker, purpose: "the per-frequency matrices")
    let shared = SharedProgress()
    let slots = WorkerSlots(count: workers)
    let report = progress.scoped(0..<Int(progress.total), subtotal: classes.count)
    try taps.withUnsafeMutableBufferPointer { tapBuffer in
        let tapPointer = UnsafePointer(tapBuffer.baseAddress!)
        let tasks: [() throws -> Void] = blocks.map { range in
            {
                guard !shared.cancelled else { return }
                let slot = slots.take()
                defer { slots.give(slot) }
                try blockSingularValues(
                    g, taps: tapPointer, block: classes[range],
                    scratch: scratch.pointer + slot * g.scratchPerWorker,
                    values: perClass.pointer + range.lowerBound * p)
                shared.add(range.count)
                // One worker runs the tasks on the calling thread, which then reports itself.
                if workers == 1 { try report.advance(to: shared.value) }
            }
        }
        try runInParallel(tasks, threads: workers, shared: shared, progress: report)
    }
    return collectValues(perClass.pointer, classes: classes, perFrequency: p, top: top)
}

/// All values with their multiplicities, sorted descending, cut to `top`.
private func collectValues<Scalar: BLASScalar>(
    _ values: UnsafePointer<Scalar>, classes: [(u: Int, v: Int, multiplicity: Int)], perFrequency p: Int, top: Int?
) -> [Scalar] {
    var all = [Scalar]()
    all.reserveCapacity(classes.reduce(0) { $0 + $1.multiplicity } * p)
    for (index, c) in classes.enumerated() {
        for _ in 0..<c.multiplicity { all.append(contentsOf: UnsafeBufferPointer(start: values + index * p, count: p)) }
    }
    all.sort(by: >)
    if let top { all.removeLast(all.count - top) }
    return all
}

/// Indices of per-worker scratch areas, handed out and returned under a lock.
private final class WorkerSlots: @unchecked Sendable {
    private let lock = Lock()
    private var free: [Int]
    init(count: Int) { free = Array((0..<count).reversed()) }
    func take() -> Int { lock.withLock { free.removeLast() } }
    func give(_ slot: Int) { lock.withLock { free.append(slot) } }
}
