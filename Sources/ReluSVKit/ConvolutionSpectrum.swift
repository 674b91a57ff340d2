import COpenBLAS

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The exact singular values of a circular convolution, grouped or not,
/// with stride 1 or a stride dividing the input (MATH.md §9, after Sedghi,
/// Gupta and Long, ICLR 2019).
///
/// A kernel `K` of shape `(C_out, C_in / G, kh, kw)` with `G` groups acting
/// on `C_in x H x W` inputs with circular padding and stride `s` is the
/// linear operator `A_K` onto `C_out x (H / s) x (W / s)`. For every
/// frequency `(u, v)` in `[0, H) x [0, W)` let
///
///     F(u, v) = sum_{a < kh, c < kw} K[:, :, a, c] exp(-2 pi i (u a / H + v c / W))
///
/// (`C_out x C_in / G`, complex). Group `g` (output channels `g C_out / G ..<`,
/// input channels `g C_in / G ..<`) is its own convolution, so the spectrum
/// is the union of the groups' spectra. Within a group, under the unitary
/// DFTs of input and output, the operator is block diagonal with one block per
/// output frequency `(u', v')` in `[0, H / s) x [0, W / s)`:
///
///     B(u', v') = (1 / s) [F(u' + j H / s, v' + l W / s)]_{j, l < s}
///
/// (`C_out / G x (C_in / G) s^2`, the `s^2` input frequencies that alias onto
/// `(u', v')`). The spectrum is the union of the blocks' singular values:
/// `(H / s)(W / s) G min(C_out / G, (C_in / G) s^2)` values. Cross-correlation
/// (as `torch` computes), any circular shift and any padding amount give the
/// same values (conjugated `F`, unitary shifts).
///
/// Phases: the taps are copied (checked for NaN and infinity) and scaled by a
/// power of two to a largest magnitude in `[1, 2)`, so that no sum below can
/// overflow and no value is lost to underflow (the scale is undone exactly at
/// the end); the output frequencies are reduced to one per conjugate pair
/// (`B(-u', -v')` is `conj B(u', v')` with permuted columns for a real kernel:
/// same singular values); blocks of output frequencies are evaluated by one
/// real GEMM of the taps against a table of cosines and sines (the direct sum
/// over `kh kw` taps, no FFT); each block matrix goes to LAPACK's complex
/// `?gesdd` (values only) in column-major order on buffers of this library;
/// the per-block values, each list descending, are finally merged descending
/// (only the largest `top` when asked).
///
/// Memory: every buffer of the call is a `ScratchBuffer` counted by
/// `CircularConvolution.memoryBytes(threads:top:)`, which is checked against
/// the memory limit before anything is allocated.
///
/// OpenBLAS 0.3.21's `?gemv_n` kernels for Haswell and later (called by
/// `?gesdd` through `?labrd` and `?larf`) read one element past the end of a
/// strided vector argument, i.e. up to one column past the end of the matrix
/// or workspace they are given (valgrind: "Invalid read of size 16 ... bytes
/// after a block"). When a block ends at the end of a mapping (as LAPACKE's
/// own copies in a worker thread's malloc arena can) the read faults. The
/// value read is not used, but the read must stay inside memory we own: the
/// matrix and the complex workspace each get `slackElements` zeroed complex
/// elements beyond their end.

/// Complex singular values in the precision of `Self` (LAPACK `cgesdd` / `zgesdd`).
public protocol ComplexSingularValueScalar: BLASScalar {
    /// The singular values of the column-major `m x n` complex matrix `a`
    /// (leading dimension `m`, interleaved real and imaginary parts,
    /// overwritten), descending, into `s` (`min(m, n)` values), with the
    /// caller's workspaces: `work` (`lwork` complex values), `rwork`
    /// (`7 min(m, n)` reals) and `iwork` (`8 min(m, n)` integers). With
    /// `lwork = -1` only the optimal `lwork` is written to `work[0]`.
    /// Returns LAPACK's `info` (0 on success).
    static func complexSingularValues(
        m: Int, n: Int, a: UnsafeMutablePointer<Self>, s: UnsafeMutablePointer<Self>,
        work: UnsafeMutablePointer<Self>, lwork: Int, rwork: UnsafeMutablePointer<Self>,
        iwork: UnsafeMutablePointer<Int32>
    ) -> Int32
    /// The LAPACK routine's name, for error messages.
    static var complexSVDName: String { get }
}

extension Float: ComplexSingularValueScalar {
    public static func complexSingularValues(
        m: Int, n: Int, a: UnsafeMutablePointer<Float>, s: UnsafeMutablePointer<Float>,
        work: UnsafeMutablePointer<Float>, lwork: Int, rwork: UnsafeMutablePointer<Float>,
        iwork: UnsafeMutablePointer<Int32>
    ) -> Int32 {
        // C99 complex arguments arrive as OpaquePointer: interleaved (real, imag) pairs.
        // Column-major: LAPACKE calls LAPACK directly, without copies of its own.
        LAPACKE_cgesdd_work(
            LAPACK_COL_MAJOR, CChar(UInt8(ascii: "N")), Int32(m), Int32(n), OpaquePointer(a), Int32(m), s,
            nil, 1, nil, 1, OpaquePointer(work), Int32(lwork), rwork, iwork)
    }
    public static var complexSVDName: String { "cgesdd" }
}

extension Double: ComplexSingularValueScalar {
    public static func complexSingularValues(
        m: Int, n: Int, a: UnsafeMutablePointer<Double>, s: UnsafeMutablePointer<Double>,
        work: UnsafeMutablePointer<Double>, lwork: Int, rwork: UnsafeMutablePointer<Double>,
        iwork: UnsafeMutablePointer<Int32>
    ) -> Int32 {
        // C99 complex arguments arrive as OpaquePointer: interleaved (real, imag) pairs.
        // Column-major: LAPACKE calls LAPACK directly, without copies of its own.
        LAPACKE_zgesdd_work(
            LAPACK_COL_MAJOR, CChar(UInt8(ascii: "N")), Int32(m), Int32(n), OpaquePointer(a), Int32(m), s,
            nil, 1, nil, 1, OpaquePointer(work), Int32(lwork), rwork, iwork)
    }
    public static var complexSVDName: String { "zgesdd" }
}

/// The geometry of a circular convolution: kernel `(C_out, C_in / G, kh, kw)`
/// with `G` groups and stride `s` on `H x W` inputs.
public struct CircularConvolution: Sendable {
    public let outChannels: Int
    /// Input channels of one group: the kernel's second dimension, `C_in / G`.
    public let inChannels: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let height: Int
    public let width: Int
    public let groups: Int
    public let stride: Int

    /// Checks the sizes: all positive, the kernel no larger than the input
    /// (a larger kernel would wrap taps onto each other), `G` dividing
    /// `C_out`, `s` dividing `H` and `W`, and the kernel small enough for
    /// LAPACK's 32-bit sizes.
    public init(
        outChannels: Int, inChannels: Int, kernelHeight: Int, kernelWidth: Int, height: Int, width: Int,
        groups: Int = 1, stride: Int = 1
    ) throws {
        guard outChannels > 0 else { throw EngineError.empty("the kernel has no output channels (0 rows)") }
        for (value, name) in [
            (outChannels, "C_out"), (inChannels, "C_in"), (kernelHeight, "kh"), (kernelWidth, "kw"),
            (height, "H"), (width, "W"), (groups, "groups"), (stride, "stride"),
        ] where value < 1 {
            throw EngineError.invalidArgument("\(name) must be positive, got \(value)")
        }
        guard kernelHeight <= height, kernelWidth <= width else {
            throw EngineError.invalidArgument(
                "the kernel (\(kernelHeight) x \(kernelWidth)) is larger than the input (\(height) x \(width)); "
                    + "a circular convolution would wrap its taps onto each other")
        }
        guard outChannels % groups == 0 else {
            throw EngineError.invalidArgument(
                "groups = \(groups) does not divide the \(outChannels) output channels")
        }
        guard height % stride == 0, width % stride == 0 else {
            throw EngineError.invalidArgument(
                "stride = \(stride) does not divide the input size \(height) x \(width) "
                    + "(the strided circular convolution needs it to)")
        }
        let limit = Double(Int32.max)
        let sizes = Double(outChannels) * Double(inChannels) * Double(kernelHeight * kernelWidth)
        let block = Double(outChannels / groups + 1) * (Double(inChannels) * Double(stride * stride) + 1)
        guard sizes <= limit, block <= limit, Double(height) * Double(width) <= limit else {
            throw EngineError.invalidArgument(
                "the convolution is too large: its kernel, input and per-frequency blocks must each have "
                    + "fewer than 2^31 entries")
        }
        (self.outChannels, self.inChannels, self.kernelHeight, self.kernelWidth) =
            (outChannels, inChannels, kernelHeight, kernelWidth)
        (self.height, self.width, self.groups, self.stride) = (height, width, groups, stride)
    }

    /// The kernel matrix `K_mat` (`rows x columns`): `C_out x (C_in / G) kh kw`.
    public func checkKernel(rows: Int, columns: Int) throws {
        guard rows == outChannels, columns == inChannels * taps else {
            throw EngineError.shape(
                "the kernel matrix is \(rows) x \(columns) but (C_out, C_in kh kw) = (\(outChannels), \(inChannels * taps)) "
                    + "for in_channels x kernel_height x kernel_width = \(inChannels) x \(kernelHeight) x \(kernelWidth)"
            )
        }
    }

    /// The number `top` of largest values requested: in `[1, valueCount]`.
    public func checkTop(_ top: Int) throws {
        guard top >= 1 else {
            throw EngineError.invalidArgument("k = \(top) is out of range [1, \(countFormula)] = [1, \(valueCount)]")
        }
        guard top <= valueCount else {
            throw EngineError.invalidArgument("k = \(top) exceeds \(countFormula) = \(valueCount)")
        }
    }

    private var countFormula: String {
        switch (groups, stride) {
        case (1, 1): return "H W min(C_out, C_in)"
        case (_, 1): return "H W G min(C_out / G, C_in / G)"
        default: return "(H / s)(W / s) G min(C_out / G, (C_in / G) s^2)"
        }
    }

    /// Output channels of one group, `C_out / G`: the rows of a block.
    var blockRows: Int { outChannels / groups }
    /// `(C_in / G) s^2`: the columns of a block.
    var blockColumns: Int { inChannels * aliases }
    /// Input frequencies per output frequency, `s^2`.
    var aliases: Int { stride * stride }
    var outHeight: Int { height / stride }
    var outWidth: Int { width / stride }
    /// Singular values of one block (one group at one output frequency).
    public var valuesPerBlock: Int { min(blockRows, blockColumns) }
    /// `min(C_out, C_in)` for a stride-1 convolution without groups: values per frequency.
    public var valuesPerFrequency: Int { groups * valuesPerBlock }
    /// All singular values of the operator.
    public var valueCount: Int { outHeight * outWidth * groups * valuesPerBlock }
    var taps: Int { kernelHeight * kernelWidth }
    var pairs: Int { outChannels * inChannels }

    /// Output frequency classes, one per conjugate pair: `(H' W' + f) / 2` with
    /// `f` the self-conjugate frequencies (`2 u = 0 mod H'` and `2 v = 0 mod W'`).
    var classCount: Int {
        let fixed = (outHeight % 2 == 0 ? 2 : 1) * (outWidth % 2 == 0 ? 2 : 1)
        return (outHeight * outWidth + fixed) / 2
    }

    /// Output frequencies per GEMM block: about 2^19 scalars of GEMM output per block.
    var blockSize: Int { max(1, min(classCount, (1 << 19) / (2 * pairs * aliases))) }
    var blockCount: Int { (classCount + blockSize - 1) / blockSize }

    /// Worker threads for `threads` requested (0: one per core), at most one per block.
    func workers(threads: Int) -> Int {
        let cores = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        return max(1, min(threads > 0 ? threads : cores, blockCount))
    }

    /// Zeroed complex elements after the block matrix and the complex
    /// workspace: one column of the longer side and a few more (see the
    /// OpenBLAS note above).
    var slackElements: Int { max(blockRows, blockColumns) + 8 }

    /// Bytes of all memory one call allocates for `threads` (0: one per
    /// core) and the largest `top` values (nil: all), scalars of
    /// `scalarBytes` bytes: the scaled taps, the class table, the values per
    /// block, each worker's scratch (its twiddle table, GEMM output, block
    /// matrix, LAPACK workspaces and values) and the merge heap. The C entry
    /// checks this before anything is allocated; each buffer checks itself again.
    public func memoryBytes<Scalar: ComplexSingularValueScalar>(threads: Int, as _: Scalar.Type) -> Double {
        let scalar = Double(MemoryLayout<Scalar>.stride)
        let lists = Double(classCount) * Double(groups)
        let shared =
            scalar * (Double(pairs) * Double(taps) + lists * Double(valuesPerBlock))
            + 4 * Double(classCount) + 8 * lists
        let workspace = BlockWorkspace(self, Scalar.self)
        let perWorker = scalar * Double(workspace.scalars) + 4 * Double(workspace.integers)
        return shared + Double(workers(threads: threads)) * perWorker
    }
}

/// One worker's scratch, in scalars of the kernel's precision (and LAPACK integers).
struct BlockWorkspace {
    let frequencies: Int  // input frequencies per GEMM block
    let table: Int
    let product: Int
    let matrix: Int
    let values: Int
    let lwork: Int  // complex elements LAPACK is told about
    let work: Int
    let rwork: Int
    let integers: Int
    var scalars: Int { table + product + matrix + values + work + rwork }

    init<Scalar: ComplexSingularValueScalar>(_ g: CircularConvolution, _: Scalar.Type) {
        frequencies = g.blockSize * g.aliases
        table = g.taps * 2 * frequencies
        product = g.pairs * 2 * frequencies
        matrix = 2 * (g.blockRows * g.blockColumns + g.slackElements)
        values = g.valuesPerBlock
        lwork = complexSVDWorkspace(m: g.blockRows, n: g.blockColumns, Scalar.self)
        work = 2 * (lwork + g.slackElements)
        rwork = max(1, 7 * g.valuesPerBlock)
        integers = 8 * g.valuesPerBlock
    }
}

/// LAPACK's optimal complex workspace of `?gesdd` (values only) for an `m x n` matrix (a query, no allocation).
func complexSVDWorkspace<Scalar: ComplexSingularValueScalar>(m: Int, n: Int, _: Scalar.Type) -> Int {
    var query: [Scalar] = [0, 0]
    var dummy: [Scalar] = [0, 0]
    var iwork: [Int32] = [0]
    let info = query.withUnsafeMutableBufferPointer { q in
        dummy.withUnsafeMutableBufferPointer { d in
            Scalar.complexSingularValues(
                m: m, n: n, a: d.baseAddress!, s: d.baseAddress!, work: q.baseAddress!, lwork: -1,
                rwork: d.baseAddress!, iwork: &iwork)
        }
    }
    let minimum = 2 * min(m, n) + max(m, n)
    guard info == 0, query[0].isFinite else { return minimum }
    return max(minimum, Int(query[0]))
}

/// Indices `u W' + v` of one output frequency per conjugate pair, in
/// increasing order, into `table` (`g.classCount` entries).
func conjugateFrequencyClasses(_ g: CircularConvolution, into table: UnsafeMutablePointer<Int32>) {
    let (h, w) = (g.outHeight, g.outWidth)
    var next = 0
    for u in 0..<h {
        for v in 0..<w {
            let index = u * w + v
            if index <= ((h - u) % h) * w + (w - v) % w {
                table[next] = Int32(index)
                next += 1
            }
        }
    }
    precondition(next == g.classCount, "conjugate classes miscounted")
}

/// How many frequencies the class with representative `index` stands for: 1 if self-conjugate, else 2.
func classMultiplicity(_ index: Int, _ g: CircularConvolution) -> Int {
    let (h, w) = (g.outHeight, g.outWidth)
    let (u, v) = (index / w, index % w)
    return index == ((h - u) % h) * w + (w - v) % w ? 1 : 2
}

/// The kernel's taps as a contiguous `(C_out C_in / G) x (kh kw)` matrix in
/// `taps`, multiplied by `2^-e` with `e` the binary exponent of the largest
/// magnitude (clamped to the normal range); returns `e`. Refuses NaN and
/// infinity. `kernel` is `K_mat`: `C_out` rows of `(C_in / G) kh kw` values.
func scaledKernelTaps<Scalar: BLASScalar>(
    _ kernel: MatrixView<Scalar>, _ g: CircularConvolution, into taps: UnsafeMutablePointer<Scalar>
) throws -> Int {
    try g.checkKernel(rows: kernel.rows, columns: kernel.columns)
    var largest: Scalar = 0
    for o in 0..<kernel.rows {
        let row = kernel.row(o)
        for j in 0..<kernel.columns {
            guard row[j].isFinite else {
                throw EngineError.nonFinite("the kernel contains NaN or infinity at row \(o), column \(j)")
            }
            largest = max(largest, abs(row[j]))
        }
    }
    let top = Int(Scalar.greatestFiniteMagnitude.exponent)
    let exponent = largest == 0 ? 0 : min(max(Int(largest.exponent), 1 - top), top)
    let scale = Scalar(sign: .plus, exponent: Scalar.Exponent(-exponent), significand: 1)
    for o in 0..<kernel.rows {
        let row = kernel.row(o)
        for j in 0..<kernel.columns { taps[o * kernel.columns + j] = row[j] * scale }
    }
    return exponent
}

/// The `(kh kw) x 2F` table of `cos` and `-sin` of `2 pi (u a / H + v c / W)`
/// for the `F` input frequencies of the output classes `classes` (columns `f`
/// and `F + f`, `f = class * s^2 + j s + l` for the input frequency
/// `(u' + j H / s, v' + l W / s)`), angles reduced exactly in integers before the division.
func twiddleTable<Scalar: BLASScalar>(
    _ g: CircularConvolution, _ classes: UnsafeBufferPointer<Int32>, into table: UnsafeMutablePointer<Scalar>
) {
    let count = classes.count * g.aliases
    let hw = g.height * g.width
    for a in 0..<g.kernelHeight {
        for c in 0..<g.kernelWidth {
            let row = table + (a * g.kernelWidth + c) * 2 * count
            for (index, representative) in classes.enumerated() {
                let (u0, v0) = (Int(representative) / g.outWidth, Int(representative) % g.outWidth)
                for j in 0..<g.stride {
                    for l in 0..<g.stride {
                        let (u, v) = (u0 + j * g.outHeight, v0 + l * g.outWidth)
                        // u a / H + v c / W = ((u a mod H) W + (v c mod W) H) / (H W), in [0, 2).
                        let numerator = (u * a % g.height) * g.width + (v * c % g.width) * g.height
                        let angle = 2 * Double.pi * Double(numerator % hw) / Double(hw)
                        let f = index * g.aliases + j * g.stride + l
                        row[f] = Scalar(cos(angle))
                        row[count + f] = Scalar(-sin(angle))
                    }
                }
            }
        }
    }
}

/// One worker's views of its scratch (`BlockWorkspace` layout).
struct WorkerScratch<Scalar: ComplexSingularValueScalar> {
    let table, product, matrix, values, work, rwork: UnsafeMutablePointer<Scalar>
    let iwork: UnsafeMutablePointer<Int32>
    let lwork: Int

    init(_ base: UnsafeMutablePointer<Scalar>, _ integers: UnsafeMutablePointer<Int32>, _ w: BlockWorkspace) {
        table = base
        product = table + w.table
        matrix = product + w.product
        values = matrix + w.matrix
        work = values + w.values
        rwork = work + w.work
        iwork = integers
        lwork = w.lwork
        // The slack beyond the matrix and the workspace is read, never used: keep it defined.
        matrix.initialize(repeating: 0, count: w.matrix)
        work.initialize(repeating: 0, count: w.work)
    }
}

/// The singular values of the blocks of the output classes `classes`, for
/// every group, written to `values` (`G min(C_out / G, C_in s^2 / G)` per
/// class, class-major, each block's values descending).
func blockSingularValues<Scalar: ComplexSingularValueScalar>(
    _ g: CircularConvolution, taps: UnsafePointer<Scalar>, classes: UnsafeBufferPointer<Int32>,
    scratch: WorkerScratch<Scalar>, values: UnsafeMutablePointer<Scalar>
) throws {
    let count = classes.count * g.aliases
    twiddleTable(g, classes, into: scratch.table)
    // product[(o, i), f] = Re F_f[o, i], product[(o, i), F + f] = Im F_f[o, i].
    Scalar.gemm(
        transA: false, transB: false, m: g.pairs, n: 2 * count, k: g.taps, alpha: 1, a: taps, lda: g.taps,
        b: scratch.table, ldb: 2 * count, beta: 0, c: scratch.product, ldc: 2 * count)
    let p = g.valuesPerBlock
    for index in 0..<classes.count {
        for group in 0..<g.groups {
            fillBlock(g, product: scratch.product, frequencies: count, index: index, group: group, into: scratch.matrix)
            let info = Scalar.complexSingularValues(
                m: g.blockRows, n: g.blockColumns, a: scratch.matrix, s: scratch.values, work: scratch.work,
                lwork: scratch.lwork, rwork: scratch.rwork, iwork: scratch.iwork)
            guard info == 0 else { throw EngineError.lapackFailure(routine: Scalar.complexSVDName, info: info) }
            (values + (index * g.groups + group) * p).update(from: scratch.values, count: p)
        }
    }
}

/// The block of `group` at the output class `index` of the GEMM block,
/// column-major (`C_out / G` rows): column `(j s + l) C_in / G + i` holds
/// `F(u' + j H / s, v' + l W / s)[g C_out / G + o, i]` (the factor `1 / s` is applied to the values).
func fillBlock<Scalar: BLASScalar>(
    _ g: CircularConvolution, product: UnsafePointer<Scalar>, frequencies count: Int, index: Int, group: Int,
    into matrix: UnsafeMutablePointer<Scalar>
) {
    let rows = g.blockRows
    for alias in 0..<g.aliases {
        let f = index * g.aliases + alias
        for i in 0..<g.inChannels {
            let column = matrix + 2 * rows * (alias * g.inChannels + i)
            for o in 0..<rows {
                let pair = (group * rows + o) * g.inChannels + i
                column[2 * o] = product[pair * 2 * count + f]
                column[2 * o + 1] = product[pair * 2 * count + count + f]
            }
        }
    }
}

/// The singular values of the circular convolution with kernel matrix
/// `kernel` (`K_mat`, `C_out x (C_in / G) kh kw`), geometry `g` (groups,
/// stride), descending, written to `output`: all `g.valueCount` of them, or
/// the largest `top`.
///
/// Computed in `Scalar` (float32 kernels with `cgesdd`, float64 with
/// `zgesdd`) on `threads` worker threads (0: one per core), each value
/// rounded to `Scalar`. A value beyond `Scalar`'s range (entries near the
/// largest float) throws `.nonFinite`. `progress` counts output frequency
/// classes and may cancel between blocks. Allocates exactly
/// `g.memoryBytes(threads:as:)` bytes (checked first).
@_specialize(where Scalar == Float)
@_specialize(where Scalar == Double)
public func circularConvolutionSpectrum<Scalar: ComplexSingularValueScalar>(
    kernel: MatrixView<Scalar>, geometry g: CircularConvolution, top: Int? = nil, threads: Int = 0,
    progress: Progress = .silent, into output: UnsafeMutableBufferPointer<Double>
) throws {
    try g.checkKernel(rows: kernel.rows, columns: kernel.columns)
    if let top { try g.checkTop(top) }
    precondition(output.count == (top ?? g.valueCount), "output buffer of the wrong size")
    try MemoryBudget.require(
        bytes: g.memoryBytes(threads: threads, as: Scalar.self), for: "the spectrum of this convolution")
    let taps = try ScratchBuffer<Scalar>(count: g.pairs * g.taps, purpose: "the kernel's taps")
    let exponent = try scaledKernelTaps(kernel, g, into: taps.pointer)
    let classes = try ScratchBuffer<Int32>(count: g.classCount, purpose: "the frequency classes")
    conjugateFrequencyClasses(g, into: classes.pointer)
    let perClass = try ScratchBuffer<Scalar>(
        count: g.classCount * g.groups * g.valuesPerBlock, purpose: "the singular values per frequency")
    try computeBlocks(
        g, taps: taps.pointer, classes: classes.pointer, threads: threads, progress: progress, into: perClass.pointer)
    try mergeDescending(
        g, perClass.pointer, classes: classes.pointer, scale: (exponent, g.stride), into: output)
}

/// All output classes' block values into `perClass`, block by block on the workers.
private func computeBlocks<Scalar: ComplexSingularValueScalar>(
    _ g: CircularConvolution, taps: UnsafeMutablePointer<Scalar>, classes: UnsafeMutablePointer<Int32>,
    threads: Int, progress: Progress, into perClass: UnsafeMutablePointer<Scalar>
) throws {
    let workers = g.workers(threads: threads)
    let layout = BlockWorkspace(g, Scalar.self)
    let scratch = try ScratchBuffer<Scalar>(count: workers * layout.scalars, purpose: "the per-frequency matrices")
    let integers = try ScratchBuffer<Int32>(count: workers * layout.integers, purpose: "LAPACK's integer workspace")
    let shared = SharedProgress()
    let queue = BlockQueue(count: g.blockCount)
    let report = progress.scoped(0..<Int(progress.total), subtotal: g.classCount)
    let p = g.groups * g.valuesPerBlock
    let tasks: [() throws -> Void] = (0..<workers).map { worker in
        {
            let mine = WorkerScratch<Scalar>(
                scratch.pointer + worker * layout.scalars, integers.pointer + worker * layout.integers, layout)
            while !shared.cancelled, let block = queue.next() {
                let start = block * g.blockSize
                let range = start..<min(start + g.blockSize, g.classCount)
                try blockSingularValues(
                    g, taps: taps, classes: UnsafeBufferPointer(start: classes + start, count: range.count),
                    scratch: mine, values: perClass + start * p)
                shared.add(range.count)
                // One worker runs on the calling thread, which then reports itself.
                if workers == 1 { try report.advance(to: shared.value) }
            }
        }
    }
    try runInParallel(tasks, threads: workers, shared: shared, progress: report)
}

/// Hands out block indices `0 ..< count` once each, under a lock.
private final class BlockQueue: @unchecked Sendable {
    private let lock = Lock()
    private var taken = 0
    private let count: Int
    init(count: Int) { self.count = count }
    func next() -> Int? {
        lock.withLock {
            guard taken < count else { return nil }
            taken += 1
            return taken - 1
        }
    }
}

/// Merges the per-block lists (each descending, `valuesPerBlock` long, its
/// class's multiplicity times) into `output`, descending, until it is full.
/// Values are unscaled (`2^e / s`) in `Double` and must be finite in `Scalar`.
/// A binary max-heap of list indices with a cursor per list: `8` bytes per list.
private func mergeDescending<Scalar: ComplexSingularValueScalar>(
    _ g: CircularConvolution, _ values: UnsafePointer<Scalar>, classes: UnsafePointer<Int32>,
    scale: (exponent: Int, stride: Int), into output: UnsafeMutableBufferPointer<Double>
) throws {
    let lists = g.classCount * g.groups
    let p = g.valuesPerBlock
    let storage = try ScratchBuffer<Int32>(count: 2 * lists, purpose: "the merge of the frequencies' values")
    let heap = storage.pointer
    let cursor = storage.pointer + lists
    let head = { (list: Int32) -> Scalar in values[Int(list) * p + Int(cursor[Int(list)])] }
    for list in 0..<lists {
        cursor[list] = 0
        heap[list] = Int32(list)
    }
    var size = lists
    for start in stride(from: size / 2 - 1, through: 0, by: -1) { siftDown(heap, start, size, head) }
    let factor = Double(sign: .plus, exponent: scale.exponent, significand: 1) / Double(scale.stride)
    var written = 0
    while written < output.count, size > 0 {
        let list = heap[0]
        let value = Double(head(list)) * factor
        guard Scalar(value).isFinite else {
            throw EngineError.nonFinite(
                "the largest singular value of the convolution exceeds the largest finite "
                    + "\(Scalar.self == Float.self ? "float32" : "float64") (\(Scalar.greatestFiniteMagnitude)); "
                    + "scale the kernel down")
        }
        for _ in 0..<classMultiplicity(Int(classes[Int(list) / g.groups]), g) where written < output.count {
            output[written] = Double(Scalar(value))
            written += 1
        }
        cursor[Int(list)] += 1
        if Int(cursor[Int(list)]) == p {
            size -= 1
            heap[0] = heap[size]
        }
        siftDown(heap, 0, size, head)
    }
}

/// Restores the max-heap property below `start` in `heap[0 ..< size]`, ordered by `key`.
private func siftDown<Scalar: Comparable>(
    _ heap: UnsafeMutablePointer<Int32>, _ start: Int, _ size: Int, _ key: (Int32) -> Scalar
) {
    var parent = start
    while true {
        var largest = parent
        let left = 2 * parent + 1
        if left < size && key(heap[left]) > key(heap[largest]) { largest = left }
        if left + 1 < size && key(heap[left + 1]) > key(heap[largest]) { largest = left + 1 }
        if largest == parent { return }
        heap.swapAt(parent, largest)
        parent = largest
    }
}

extension UnsafeMutablePointer {
    fileprivate func swapAt(_ i: Int, _ j: Int) {
        let t = self[i]
        self[i] = self[j]
        self[j] = t
    }
}

/// The singular values of the circular convolution as an array of `Scalar`,
/// descending (`circularConvolutionSpectrum` into a buffer of this call).
public func circularConvolutionSingularValues<Scalar: ComplexSingularValueScalar>(
    kernel: MatrixView<Scalar>, geometry g: CircularConvolution, top: Int? = nil, threads: Int = 0,
    progress: Progress = .silent
) throws -> [Scalar] {
    if let top { try g.checkTop(top) } else { try g.checkKernel(rows: kernel.rows, columns: kernel.columns) }
    var values = [Double](repeating: 0, count: top ?? g.valueCount)
    try values.withUnsafeMutableBufferPointer {
        try circularConvolutionSpectrum(
            kernel: kernel, geometry: g, top: top, threads: threads, progress: progress, into: $0)
    }
    return values.map { Scalar($0) }
}
