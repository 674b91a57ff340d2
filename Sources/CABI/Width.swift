import CReluSV
import ReluSVKit

/// `samples` arrives as a C `size_t`: values above `Int.max` read as negative
/// (size arithmetic, the C layer's); its range is the engine's rule.
func checkSamples(_ samples: Int) throws {
    guard samples >= 0 else {
        throw CallError(
            RELUSV_ERROR_INVALID_ARGUMENT,
            "samples = \(UInt(bitPattern: samples)) exceeds the limit of "
                + "\(WidthAccumulator<Double>.maximumSamples)")
    }
}

extension relusv_width_result {
    init(_ s: SampleSummary, points: Int) {
        self.init(
            estimate: s.estimate, std_error: s.standardError, mean: s.mean,
            mean_std_error: s.meanStandardError, samples: UInt64(s.count), points: UInt64(points))
    }
}

/// Copies `values` to the caller's optional buffer.
func copyOut(_ values: [Double], to buffer: UnsafeMutablePointer<Double>?) {
    guard let buffer else { return }
    values.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress!, count: $0.count) }
}

@_cdecl("relusv_gmw")
public func relusv_gmw(
    _ x: UnsafePointer<relusv_matrix>?, _ samples: Int, _ seed: UInt64, _ trim: Double, _ spherical: Int32,
    _ sampleWidths: UnsafeMutablePointer<Double>?, _ result: UnsafeMutablePointer<relusv_width_result>?,
    _ progressFn: relusv_progress_fn?, _ userData: UnsafeMutableRawPointer?
) -> relusv_status {
    guarded {
        let x = try MatrixArgument(x, "x")
        let result = try required(result, "result")
        try checkSamples(samples)
        let report = progress(progressFn, userData, total: x.rows)
        let (summary, widths) =
            switch x {
            case .float(let v):
                try gaussianMeanWidth(
                    of: v, samples: samples, seed: seed, trim: trim, spherical: spherical != 0, progress: report)
            case .double(let v):
                try gaussianMeanWidth(
                    of: v, samples: samples, seed: seed, trim: trim, spherical: spherical != 0, progress: report)
            }
        copyOut(widths, to: sampleWidths)
        result.pointee = relusv_width_result(summary, points: x.rows)
    }
}

@_cdecl("relusv_diameter")
public func relusv_diameter(
    _ x: UnsafePointer<relusv_matrix>?, _ out: UnsafeMutablePointer<Double>?,
    _ progressFn: relusv_progress_fn?, _ userData: UnsafeMutableRawPointer?
) -> relusv_status {
    guarded {
        let x = try MatrixArgument(x, "x")
        let out = try required(out, "diameter")
        let report = progress(progressFn, userData, total: diameterProgressUnits(rows: x.rows))
        out.pointee =
            switch x {
            case .float(let v): try diameter(of: v, progress: report)
            case .double(let v): try diameter(of: v, progress: report)
            }
    }
}

@_cdecl("relusv_gaussian_to_spherical_factor")
public func relusv_gaussian_to_spherical_factor(_ n: UInt64, _ out: UnsafeMutablePointer<Double>?) -> relusv_status {
    guarded {
        let out = try required(out, "factor")
        guard n <= UInt64(Int.max) else {
            throw CallError(RELUSV_ERROR_INVALID_ARGUMENT, "dimension = \(n) is too large")
        }
        try checkSphericalDimension(Int(n))
        out.pointee = gaussianToSphericalFactor(dimension: Int(n))
    }
}
