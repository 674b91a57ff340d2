import CReluSV
import ReluSVKit

#if canImport(Glibc)
import Glibc
#endif

// Entry points of the "spectra" section of relusv.h: linear singular values,
// ReLU singular-value bounds, the fit gradient, and operator widths.

/// The precision a call computes in: float32 when every matrix given is
/// float32, float64 otherwise.
private func computesInFloat(_ args: MatrixArgument?...) -> Bool {
    args.allSatisfy { arg in
        guard let arg else { return true }
        if case .float = arg { return true }
        return false
    }
}

/// Calls `body` with a view of `arg` in `Scalar`, converting (one copy) only
/// when the caller's dtype differs.
private func withView<Scalar: BLASScalar, R>(_ arg: MatrixArgument, _ body: (MatrixView<Scalar>) throws -> R) rethrows
    -> R
{
    switch arg {
    case .float(let v) where Scalar.self == Float.self:
        return try body(unsafeBitCast(v, to: MatrixView<Scalar>.self))
    case .double(let v) where Scalar.self == Double.self:
        return try body(unsafeBitCast(v, to: MatrixView<Scalar>.self))
    default:
        var copy = Matrix<Scalar>(rows: arg.rows, columns: arg.columns)
        for i in 0..<arg.rows {
            for j in 0..<arg.columns {
                switch arg {
                case .float(let v): copy[i, j] = Scalar(v.row(i)[j])
                case .double(let v): copy[i, j] = Scalar(v.row(i)[j])
                }
            }
        }
        return try copy.withView(body)
    }
}

/// The bias as a vector: a `1 x m` (or `m x 1`) matrix, or nil.
private func biasVector<Scalar: BLASScalar>(_ arg: MatrixArgument?) throws -> [Scalar]? {
    guard let arg else { return nil }
    guard arg.rows == 1 || arg.columns == 1 else {
        throw CallError(RELUSV_ERROR_SHAPE, "b must be a vector, got shape (\(arg.rows), \(arg.columns))")
    }
    let count = arg.rows * arg.columns  // its length against W's rows is the engine's check (ReluLayer)
    return withView(arg) { (v: MatrixView<Scalar>) in
        (0..<count).map { v.rows == 1 ? v.row(0)[$0] : v.row($0)[0] }
    }
}

private func optionalMatrix(_ pointer: UnsafePointer<relusv_matrix>?, _ name: String) throws -> MatrixArgument? {
    guard pointer != nil else { return nil }
    return try MatrixArgument(pointer, name)
}

/// The `(W, b, X)` of a layer entry point: the pointers and dtypes checked
/// (`MatrixArgument`), `W` not empty (the engine's rule, first, as every other
/// rule depends on `W`'s shape); the rest is checked by the engine.
private struct LayerArguments {
    let w: MatrixArgument
    let bias: MatrixArgument?
    let x: MatrixArgument?

    init(
        _ w: UnsafePointer<relusv_matrix>?, _ bias: UnsafePointer<relusv_matrix>?,
        _ x: UnsafePointer<relusv_matrix>?, requireX: Bool = false
    ) throws {
        self.w = try MatrixArgument(w, "W")
        self.bias = try optionalMatrix(bias, "b")
        self.x = requireX ? try MatrixArgument(x, "X") : try optionalMatrix(x, "X")
        try checkWeight(rows: self.w.rows, columns: self.w.columns)
    }

    /// The engine's check of `X` against `W` (groups of `groupSize` rows), when `X` is given.
    func checkData(groupSize: Int = 1) throws {
        guard let x else { return }
        try ReluBoundRequest.checkData(rows: x.rows, columns: x.columns, inputs: w.columns, groupSize: groupSize)
    }
}

// MARK: - linear singular values

@_cdecl("relusv_singular_values")
public func relusv_singular_values(_ w: UnsafePointer<relusv_matrix>?, _ values: UnsafeMutablePointer<Double>?)
    -> relusv_status
{
    guarded { try singularValuesOut(w, tolerance: 0, values) }
}

@_cdecl("relusv_singular_values_tol")
public func relusv_singular_values_tol(
    _ w: UnsafePointer<relusv_matrix>?, _ tolerance: Double, _ values: UnsafeMutablePointer<Double>?
) -> relusv_status {
    guarded { try singularValuesOut(w, tolerance: valueTolerance(tolerance), values) }
}

/// The values of `relusv_singular_values(_tol)` written to `values`.
private func singularValuesOut(
    _ w: UnsafePointer<relusv_matrix>?, tolerance: Double, _ values: UnsafeMutablePointer<Double>?
) throws {
    let w = try MatrixArgument(w, "W")
    let values = try required(values, "values")
    // One OpenBLAS thread: ?gesdd's values-only path gains nothing from more on these sizes, and threads that
    // wait for a core (busy machines, or OpenMP threads of the caller still spinning) slow it several times.
    let s: [Double] = try BLASThreadLimit.singleThreaded {
        switch w {
        case .float(let v): try singularValues(of: v, tolerance: tolerance).map(Double.init)
        case .double(let v): try singularValues(of: v, tolerance: tolerance)
        }
    }
    copyOut(s, to: values)
}

/// A `tolerance` argument of the C surface (the accuracy of singular values
/// relative to `sigma_0`): finite and non-negative, or the error naming it.
func valueTolerance(_ tolerance: Double) throws -> Double {
    guard tolerance.isFinite, tolerance >= 0 else {
        throw CallError(RELUSV_ERROR_INVALID_ARGUMENT, "tolerance = \(tolerance) must be finite and non-negative")
    }
    return tolerance
}

@_cdecl("relusv_numerical_rank")
public func relusv_numerical_rank(_ a: UnsafePointer<relusv_matrix>?, _ rank: UnsafeMutablePointer<Int>?)
    -> relusv_status
{
    guarded {
        let a = try MatrixArgument(a, "A")
        let rank = try required(rank, "rank")
        rank.pointee = try BLASThreadLimit.singleThreaded {
            switch a {
            case .float(let v): try numericalRank(of: v)
            case .double(let v): try numericalRank(of: v)
            }
        }
    }
}

@_cdecl("relusv_rank_of_spectrum")
public func relusv_rank_of_spectrum(
    _ values: UnsafePointer<Double>?, _ count: Int, _ rows: Int, _ columns: Int, _ dtype: Int32,
    _ rank: UnsafeMutablePointer<Int>?
) -> relusv_status {
    guarded {
        let rank = try required(rank, "rank")
        let bits = try dtypeBits(dtype)
        let epsilon = bits == 32 ? Double(Float.ulpOfOne) : Double.ulpOfOne
        rank.pointee = try rankOfSpectrum(values, count, rows, columns, epsilon: epsilon)
    }
}

@_cdecl("relusv_rank_of_spectrum_eps")
public func relusv_rank_of_spectrum_eps(
    _ values: UnsafePointer<Double>?, _ count: Int, _ rows: Int, _ columns: Int, _ eps: Double,
    _ rank: UnsafeMutablePointer<Int>?
) -> relusv_status {
    guarded {
        let rank = try required(rank, "rank")
        guard eps.isFinite, eps > 0, eps < 1 else {
            throw CallError(RELUSV_ERROR_INVALID_ARGUMENT, "eps = \(eps) is not a machine epsilon in (0, 1)")
        }
        rank.pointee = try rankOfSpectrum(values, count, rows, columns, epsilon: eps)
    }
}

/// `numericalRank` of `count` caller values, checked: at most `min(rows, columns)`, finite, nonnegative,
/// descending.
private func rankOfSpectrum(
    _ values: UnsafePointer<Double>?, _ count: Int, _ rows: Int, _ columns: Int, epsilon: Double
) throws -> Int {
    guard count >= 0, rows >= 0, columns >= 0, count <= min(rows, columns) else {
        throw CallError(
            RELUSV_ERROR_SHAPE,
            "count = \(UInt(bitPattern: count)) singular values for a \(UInt(bitPattern: rows)) x "
                + "\(UInt(bitPattern: columns)) matrix (at most min(m, n))")
    }
    let s = count == 0 ? [] : Array(UnsafeBufferPointer(start: try required(values, "values"), count: count))
    for (i, v) in s.enumerated() {
        guard v.isFinite, v >= 0 else {
            throw CallError(RELUSV_ERROR_NONFINITE, "values[\(i)] = \(v) is not a finite nonnegative number")
        }
        guard i == 0 || v <= s[i - 1] else {
            throw CallError(RELUSV_ERROR_INVALID_ARGUMENT, "values are not descending at index \(i)")
        }
    }
    return numericalRank(singularValues: s, rows: rows, columns: columns, epsilon: epsilon)
}

@_cdecl("relusv_truncated_svd")
public func relusv_truncated_svd(
    _ w: UnsafePointer<relusv_matrix>?, _ rank: Int, _ u: UnsafeMutablePointer<Double>?,
    _ s: UnsafeMutablePointer<Double>?, _ vt: UnsafeMutablePointer<Double>?
) -> relusv_status {
    guarded {
        let w = try MatrixArgument(w, "W")
        try checkWeight(rows: w.rows, columns: w.columns)
        guard rank >= 0 else {  // size_t above Int.max reads as negative
            throw CallError(RELUSV_ERROR_INVALID_ARGUMENT, "rank = \(UInt(bitPattern: rank)) is too large")
        }
        try checkTruncationRank(rank, rows: w.rows, columns: w.columns)
        guard rank > 0 else { return }
        let u = try required(u, "u")
        let s = try required(s, "s")
        let vt = try required(vt, "vt")
        func write<Scalar: BLASScalar>(_ svd: ThinSVD<Scalar>) {
            let t = svd.truncated(rank: rank)
            copyOut(t.u.storage.map(Double.init), to: u)
            copyOut(t.s.map(Double.init), to: s)
            copyOut(t.vt.storage.map(Double.init), to: vt)
        }
        switch w {
        case .float(let v): write(try thinSVD(of: v))
        case .double(let v): write(try thinSVD(of: v))
        }
    }
}

// MARK: - ReLU singular values

/// The object behind a `relusv_relu_spectrum *`.
final class SpectrumBox: OpaqueHandle {
    static let kindName = "relusv_relu_spectrum"
    let entries: [SpectrumEntry]
    let factors: [(u: [Double], v: [Double], k: Int)?]
    let info: relusv_relu_spectrum_info

    init<Scalar: BLASScalar>(_ s: ReluSpectrum<Scalar>, m: Int, n: Int, points: Int, dtype: Int32) {
        entries = s.entries
        // L = U V / factorScale (a power of two): divided in Double, exactly.
        let scale = s.factorScale
        factors = s.factors.map { f in f.map { ($0.u.map { Double($0) / scale }, $0.v.map(Double.init), $0.k) } }
        info = relusv_relu_spectrum_info(
            count: UInt64(s.entries.count), rows: UInt64(m), cols: UInt64(n),
            points: UInt64(points), data_max_norm: s.dataMaxNorm,
            fit_stride: UInt64(s.fitStride), dtype: dtype,
            has_factors: s.factors.contains { $0 != nil } ? 1 : 0)
    }

    static func from(_ handle: OpaquePointer?) throws -> SpectrumBox { try borrow(handle, "spectrum") }
}

extension relusv_relu_sv_options: SizedOptions {
    /// Version 1 (relusv 0.1.0) ends with `batch_size`.
    static let firstVersionSize = MemoryLayout<Self>.offset(of: \.batch_size)! + MemoryLayout<UInt64>.size
    static var defaults: Self { reluSVOptionDefaults() }
}

@_cdecl("relusv_relu_sv_options_init")
public func relusv_relu_sv_options_init(_ options: UnsafeMutableRawPointer?, _ structSize: Int) {
    relusv_relu_sv_options.initialize(options, size: structSize)
}

/// The library's defaults of `relusv_relu_sv_options`.
private func reluSVOptionDefaults() -> relusv_relu_sv_options {
    let d = SpectrumSettings()
    return relusv_relu_sv_options(
        struct_size: relusv_relu_sv_options.librarySize,
        leaky_slope: 0, seed: d.seed, sphere_points: UInt64(ReluBoundRequest.defaultSpherePoints),
        max_steps: UInt64(d.fit.maxSteps), time_budget: 0,
        threads: 0, refine: d.fit.refine ? 1 : 0, keep_factors: 0, fit_stride: 0,
        learning_rate: d.fit.learningRate, batch_size: UInt64(d.fit.batchSize), group_size: 1,
        fit_points: UInt64(d.fitPoints), weight_svd: nil)
}

@_cdecl("relusv_bound_source_name")
public func relusv_bound_source_name(_ source: Int32) -> UnsafePointer<CChar>? {
    guard let s = BoundSource(rawValue: source) else { return nil }
    return sourceNames[Int(s.rawValue)]
}

private let sourceNames: [UnsafePointer<CChar>] = BoundSource.allCases.sorted { $0.rawValue < $1.rawValue }.map {
    UnsafePointer(strdup($0.name)!)
}

/// The requested ranks: `ks[0 ..< count]`, or every `k < p` when `count` is 0.
/// Their count and each value are checked by the engine as they are read
/// (before the list is allocated, and each in the caller's `uint64_t`).
private func rankList(_ ks: UnsafePointer<UInt64>?, _ count: Int, p: Int) throws -> [Int] {
    guard count >= 0 else {  // size_t above Int.max reads as negative
        throw CallError(RELUSV_ERROR_INVALID_ARGUMENT, "k_count = \(UInt(bitPattern: count)) is too large")
    }
    guard count > 0 else { return Array(0..<p) }
    try ReluBoundRequest.checkRankCount(count, p: p)
    let ks = try required(ks, "ks")
    return try (0..<count).map { i in
        try ReluBoundRequest.checkRank(ks[i], p: p)
        return Int(ks[i])
    }
}

/// The engine's settings from the caller's options (`uint64_t` fields clamped
/// to the engine's `Int` ranges; the ranges themselves are the engine's).
private func spectrumSettings(_ o: relusv_relu_sv_options) -> SpectrumSettings {
    var settings = SpectrumSettings()
    settings.seed = o.seed
    settings.threads = Int(min(o.threads, 1024))
    settings.timeBudget = o.time_budget
    settings.fitStride = Int(min(o.fit_stride, UInt64(Int32.max)))
    settings.keepFactors = o.keep_factors != 0
    settings.fit.maxSteps = Int(min(o.max_steps, UInt64(Int32.max)))
    settings.fit.refine = o.refine != 0
    settings.fit.learningRate = o.learning_rate
    settings.fit.batchSize = Int(min(o.batch_size, UInt64(Int32.max)))
    settings.fitPoints = Int(min(o.fit_points, UInt64(Int32.max)))
    return settings
}

@_cdecl("relusv_relu_singular_values")
public func relusv_relu_singular_values(
    _ w: UnsafePointer<relusv_matrix>?, _ bias: UnsafePointer<relusv_matrix>?, _ x: UnsafePointer<relusv_matrix>?,
    _ ks: UnsafePointer<UInt64>?, _ kCount: Int, _ options: UnsafePointer<relusv_relu_sv_options>?,
    _ out: UnsafeMutablePointer<OpaquePointer?>?, _ progressFn: relusv_progress_fn?,
    _ userData: UnsafeMutableRawPointer?
) -> relusv_status {
    guarded {
        let args = try LayerArguments(w, bias, x)
        let (w, bias, x) = (args.w, args.bias, args.x)
        let out = try required(out, "spectrum")
        let o = try relusv_relu_sv_options.read(options, "options")
        let p = min(w.rows, w.columns)
        let list = try rankList(ks, kCount, p: p)
        let settings = spectrumSettings(o)
        try ReluBoundRequest.check(ks: list, p: p, settings: settings)
        let groupSize = Int(clamping: o.group_size)
        let spherePoints = Int(clamping: o.sphere_points)
        if x != nil {
            try args.checkData(groupSize: groupSize)
        } else {
            try ReluBoundRequest.checkSphere(points: spherePoints, groupSize: groupSize)
        }
        // float32 points computed in float64 never need the scaled copy (their norms lie within 2^+-200).
        let scaledPoints: Bool =
            switch x {
            case .float(let v): computesInFloat(w, bias, x) && CertificationScale.copiesPoints(v)
            case .double(let v): CertificationScale.copiesPoints(v)
            case nil: false
            }
        try MemoryBudget.require(
            bytes: ReluBoundRequest.memoryBytes(
                outputs: w.rows, inputs: w.columns,
                points: x?.rows ?? spherePoints, ks: list,
                settings: settings,
                scalarBytes: computesInFloat(w, bias, x) ? 4 : 8, scaledPoints: scaledPoints),
            for: "the ReLU singular values of these points")
        let report = progress(progressFn, userData, total: 1000)

        func run<Scalar: BLASScalar>(_: Scalar.Type) throws -> SpectrumBox {
            let layer = try withView(w) { (v: MatrixView<Scalar>) in
                try ReluLayer(weight: v, bias: biasVector(bias), slope: o.leaky_slope)
            }
            let shared = try o.weight_svd.map { handle in
                try withView(w) { (v: MatrixView<Scalar>) in try WeightSVDBox.factors(handle, for: v) }
            }
            func compute(_ data: MatrixView<Scalar>) throws -> SpectrumBox {
                let spectrum = try reluSpectrum(
                    layer: layer, points: data, groupSize: groupSize, ks: list, settings: settings,
                    weightSVD: shared, progress: report)
                return SpectrumBox(
                    spectrum, m: w.rows, n: w.columns, points: data.rows,
                    dtype: (Scalar.self == Float.self ? RELUSV_FLOAT32 : RELUSV_FLOAT64).rawValue.int32)
            }
            if let x { return try withView(x, compute) }
            let sample: Matrix<Scalar> = try withView(w) { (v: MatrixView<Scalar>) in
                try sphereSample(points: spherePoints, seed: o.seed, withSingularDirectionsOf: v)
            }
            return try sample.withView(compute)
        }
        // The whole call (the sphere sample's SVD included) with OpenBLAS at one thread: the bounds are
        // bit-identical whatever OPENBLAS_NUM_THREADS, `threads` and concurrent calls (relusv.h).
        let box = try BLASThreadLimit.singleThreaded {
            computesInFloat(w, bias, x) ? try run(Float.self) : try run(Double.self)
        }
        out.pointee = box.handle()
    }
}

@_cdecl("relusv_relu_spectrum_free")
public func relusv_relu_spectrum_free(_ handle: OpaquePointer?) {
    SpectrumBox.release(handle)
}

@_cdecl("relusv_relu_spectrum_info_get")
public func relusv_relu_spectrum_info_get(
    _ handle: OpaquePointer?, _ info: UnsafeMutablePointer<relusv_relu_spectrum_info>?
) -> relusv_status {
    guarded {
        let box = try SpectrumBox.from(handle)
        try required(info, "info").pointee = box.info
    }
}

@_cdecl("relusv_relu_spectrum_entries")
public func relusv_relu_spectrum_entries(
    _ handle: OpaquePointer?, _ entries: UnsafeMutablePointer<relusv_relu_sv_entry>?
) -> relusv_status {
    guarded {
        let box = try SpectrumBox.from(handle)
        let entries = try required(entries, "entries")
        for (i, e) in box.entries.enumerated() {
            entries[i] = relusv_relu_sv_entry(
                k: UInt64(e.k), sigma: e.sigma, truncation_bound: e.truncationBound,
                bound: e.bound, source: e.source.rawValue, steps: UInt64(e.steps),
                seconds: e.seconds)
        }
    }
}

@_cdecl("relusv_relu_spectrum_factors")
public func relusv_relu_spectrum_factors(
    _ handle: OpaquePointer?, _ index: Int, _ rank: UnsafeMutablePointer<Int>?,
    _ u: UnsafeMutablePointer<Double>?, _ v: UnsafeMutablePointer<Double>?
) -> relusv_status {
    guarded {
        let box = try SpectrumBox.from(handle)
        let rank = try required(rank, "rank")
        guard index >= 0, index < box.entries.count else {
            throw CallError(RELUSV_ERROR_INVALID_ARGUMENT, "index \(index) is out of range [0, \(box.entries.count))")
        }
        guard let f = box.factors[index] else {
            throw CallError(RELUSV_ERROR_INVALID_ARGUMENT, "the factors were not kept (set keep_factors)")
        }
        rank.pointee = f.k
        copyOut(f.u, to: u)
        copyOut(f.v, to: v)
    }
}

// MARK: - gradient

@_cdecl("relusv_relu_fit_gradient")
public func relusv_relu_fit_gradient(
    _ w: UnsafePointer<relusv_matrix>?, _ bias: UnsafePointer<relusv_matrix>?, _ x: UnsafePointer<relusv_matrix>?,
    _ u: UnsafePointer<relusv_matrix>?, _ v: UnsafePointer<relusv_matrix>?, _ leakySlope: Double,
    _ loss: UnsafeMutablePointer<Double>?, _ gradU: UnsafeMutablePointer<Double>?,
    _ gradV: UnsafeMutablePointer<Double>?
) -> relusv_status {
    guarded {
        let args = try LayerArguments(w, bias, x, requireX: true)
        let (w, bias, x) = (args.w, args.bias, args.x!)
        let u = try MatrixArgument(u, "U")
        let v = try MatrixArgument(v, "V")
        let loss = try required(loss, "loss")
        let gradU = try required(gradU, "grad_u")
        let gradV = try required(gradV, "grad_v")
        try args.checkData()
        try ReluBoundRequest.checkFactors(
            u: (u.rows, u.columns), v: (v.rows, v.columns), outputs: w.rows,
            inputs: w.columns)
        try MemoryBudget.require(
            bytes: ReluBoundRequest.gradientMemoryBytes(
                points: x.rows, outputs: w.rows, inputs: w.columns, rank: u.columns,
                scalarBytes: computesInFloat(w, bias, x, u, v) ? 4 : 8),
            for: "the gradient over \(x.rows) points at rank \(u.columns)")
        func run<Scalar: BLASScalar>(_: Scalar.Type) throws {
            let layer = try withView(w) { (wv: MatrixView<Scalar>) in
                try ReluLayer(weight: wv, bias: biasVector(bias), slope: leakySlope)
            }
            let result = try withView(x) { (xv: MatrixView<Scalar>) in
                let problem = try ReluBoundProblem(layer: layer, points: xv)
                return try withView(u) { (uv: MatrixView<Scalar>) in
                    try withView(v) { (vv: MatrixView<Scalar>) in try problem.lossAndGradient(u: uv, v: vv) }
                }
            }
            loss.pointee = result.loss
            copyOut(result.gradU.map(Double.init), to: gradU)
            copyOut(result.gradV.map(Double.init), to: gradV)
        }
        if computesInFloat(w, bias, x, u, v) { try run(Float.self) } else { try run(Double.self) }
    }
}

// MARK: - operator width

@_cdecl("relusv_operator_gmw")
public func relusv_operator_gmw(
    _ w: UnsafePointer<relusv_matrix>?, _ bias: UnsafePointer<relusv_matrix>?, _ x: UnsafePointer<relusv_matrix>?,
    _ relu: Int32, _ leakySlope: Double, _ samples: Int, _ spherePoints: Int, _ seed: UInt64, _ trim: Double,
    _ result: UnsafeMutablePointer<relusv_operator_width>?, _ progressFn: relusv_progress_fn?,
    _ userData: UnsafeMutableRawPointer?
) -> relusv_status {
    guarded {
        let args = try LayerArguments(w, bias, x)
        let (w, bias, x) = (args.w, args.bias, args.x)
        let result = try required(result, "result")
        try checkSamples(samples)
        if relu == 0 {  // the meaning of this entry's flag: a linear map has no b or X
            guard bias == nil, x == nil else {
                throw CallError(RELUSV_ERROR_INVALID_ARGUMENT, "b and X apply to the ReLU layer only (set relu)")
            }
        }
        guard spherePoints >= 0, spherePoints <= Int(Int32.max) else {  // size_t above Int.max reads as negative
            throw CallError(
                RELUSV_ERROR_INVALID_ARGUMENT, "sphere_points = \(UInt(bitPattern: spherePoints)) is too large")
        }
        if relu != 0 {
            if x != nil { try args.checkData() } else { try checkSpherePoints(spherePoints) }
        }
        try MemoryBudget.require(
            bytes: operatorWidthMemory(
                outputs: w.rows, inputs: w.columns, samples: samples,
                points: relu == 0 ? 0 : (x?.rows ?? spherePoints), relu: relu != 0,
                scalarBytes: computesInFloat(w, bias, x) ? 4 : 8),
            for: "this operator width")
        let report = progress(progressFn, userData, total: max(1, x?.rows ?? spherePoints))
        func run<Scalar: BLASScalar>(_: Scalar.Type) throws -> OperatorWidth {
            if relu == 0 {
                return try withView(w) { (v: MatrixView<Scalar>) in
                    try linearOperatorWidth(weight: v, samples: samples, seed: seed, trim: trim, progress: report)
                }
            }
            let layer = try withView(w) { (v: MatrixView<Scalar>) in
                try ReluLayer(weight: v, bias: biasVector(bias), slope: leakySlope)
            }
            if let x {
                return try withView(x) {
                    try layerOperatorWidth(
                        layer: layer, points: $0, samples: samples, seed: seed, trim: trim, progress: report)
                }
            }
            let sample: Matrix<Scalar> = try sphereSample(points: spherePoints, dimension: w.columns, seed: seed)
            return try sample.withView {
                try layerOperatorWidth(
                    layer: layer, points: $0, samples: samples, seed: seed, trim: trim, progress: report)
            }
        }
        let r = computesInFloat(w, bias, x) ? try run(Float.self) : try run(Double.self)
        result.pointee = relusv_operator_width(
            estimate: r.estimate, std_error: r.standardError, lower: r.lower,
            upper: r.upper, norm: r.norm, samples: UInt64(r.samples),
            points: UInt64(r.points))
    }
}
