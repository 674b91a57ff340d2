import CReluSV
import ReluSVKit

/// The object behind a `relusv_gmw_accumulator *`: a retained box around the
/// engine accumulator, created by `_create`/`_import` and released by `_free`.
final class AccumulatorBox: OpaqueHandle {
    static let kindName = "relusv_gmw_accumulator"
    let accumulator: AnyWidthAccumulator
    init(_ accumulator: AnyWidthAccumulator) { self.accumulator = accumulator }

    static func from(_ handle: OpaquePointer?, _ name: String = "accumulator") throws -> AnyWidthAccumulator {
        try borrow(handle, name).accumulator
    }
}

@_cdecl("relusv_gmw_accumulator_create")
public func relusv_gmw_accumulator_create(
    _ dimension: Int, _ samples: Int, _ seed: UInt64, _ dtype: Int32, _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> relusv_status {
    guarded {
        let out = try required(out, "accumulator")
        guard dimension >= 0 else {  // size_t above Int.max reads as negative; the range is the engine's
            throw CallError(
                RELUSV_ERROR_INVALID_ARGUMENT,
                "dimension = \(UInt(bitPattern: dimension)) exceeds the limit of "
                    + "\(WidthAccumulator<Double>.maximumDimension)")
        }
        try checkSamples(samples)
        let accumulator: AnyWidthAccumulator =
            try dtypeBits(dtype) == 32
            ? .float(WidthAccumulator(dimension: dimension, samples: samples, seed: seed))
            : .double(WidthAccumulator(dimension: dimension, samples: samples, seed: seed))
        out.pointee = AccumulatorBox(accumulator).handle()
    }
}

@_cdecl("relusv_gmw_accumulator_free")
public func relusv_gmw_accumulator_free(_ handle: OpaquePointer?) {
    AccumulatorBox.release(handle)
}

@_cdecl("relusv_gmw_accumulator_info_get")
public func relusv_gmw_accumulator_info_get(
    _ handle: OpaquePointer?, _ info: UnsafeMutablePointer<relusv_gmw_accumulator_info>?
) -> relusv_status {
    guarded {
        let a = try AccumulatorBox.from(handle)
        let info = try required(info, "info")
        info.pointee = relusv_gmw_accumulator_info(
            dimension: UInt64(a.dimension), samples: UInt64(a.samples), seed: a.seed, points: UInt64(a.count),
            dtype: (a.precisionBits == 32 ? RELUSV_FLOAT32 : RELUSV_FLOAT64).rawValue.int32)
    }
}

@_cdecl("relusv_gmw_accumulator_update")
public func relusv_gmw_accumulator_update(
    _ handle: OpaquePointer?, _ x: UnsafePointer<relusv_matrix>?,
    _ progressFn: relusv_progress_fn?, _ userData: UnsafeMutableRawPointer?
) -> relusv_status {
    guarded {
        let a = try AccumulatorBox.from(handle)
        let x = try MatrixArgument(x, "x")
        let report = progress(progressFn, userData, total: x.rows)
        switch (a, x) {
        case (.float(let acc), .float(let v)): try acc.update(v, progress: report)
        case (.double(let acc), .double(let v)): try acc.update(v, progress: report)
        default:
            throw CallError(
                RELUSV_ERROR_DTYPE,
                "x is float\(x.dtype == RELUSV_FLOAT32.rawValue.int32 ? 32 : 64) but the accumulator computes in float\(a.precisionBits)"
            )
        }
    }
}

@_cdecl("relusv_gmw_accumulator_merge")
public func relusv_gmw_accumulator_merge(_ handle: OpaquePointer?, _ other: OpaquePointer?) -> relusv_status {
    guarded {
        let a = try AccumulatorBox.from(handle)
        let b = try AccumulatorBox.from(other, "other")
        try a.merge(b)
    }
}

@_cdecl("relusv_gmw_accumulator_estimate")
public func relusv_gmw_accumulator_estimate(
    _ handle: OpaquePointer?, _ trim: Double, _ spherical: Int32,
    _ sampleWidths: UnsafeMutablePointer<Double>?, _ result: UnsafeMutablePointer<relusv_width_result>?
) -> relusv_status {
    guarded {
        let a = try AccumulatorBox.from(handle)
        let result = try required(result, "result")
        try SampleSummary.checkTrim(trim)  // the engine's check, before the widths are formed
        let widths = try a.sampleWidths(spherical: spherical != 0)
        copyOut(widths, to: sampleWidths)
        result.pointee = relusv_width_result(try SampleSummary(widths, trim: trim), points: a.count)
    }
}

@_cdecl("relusv_gmw_accumulator_extremes")
public func relusv_gmw_accumulator_extremes(
    _ handle: OpaquePointer?, _ maxima: UnsafeMutablePointer<Double>?, _ minima: UnsafeMutablePointer<Double>?
) -> relusv_status {
    guarded {
        let a = try AccumulatorBox.from(handle)
        let maxima = try required(maxima, "maxima")
        let minima = try required(minima, "minima")
        copyOut(a.maxima, to: maxima)
        copyOut(a.minima, to: minima)
    }
}

@_cdecl("relusv_gmw_accumulator_merge_extremes")
public func relusv_gmw_accumulator_merge_extremes(
    _ handle: OpaquePointer?, _ maxima: UnsafePointer<Double>?, _ minima: UnsafePointer<Double>?, _ points: UInt64
) -> relusv_status {
    guarded {
        let a = try AccumulatorBox.from(handle)
        let maxima = try required(maxima, "maxima")
        let minima = try required(minima, "minima")
        guard points <= UInt64(Int.max) else {
            throw CallError(RELUSV_ERROR_INVALID_ARGUMENT, "points = \(points) is too large")
        }
        let mx = Array(UnsafeBufferPointer(start: maxima, count: a.samples))
        let mn = Array(UnsafeBufferPointer(start: minima, count: a.samples))
        try a.merge(maxima: mx, minima: mn, count: Int(points), dimension: a.dimension, seed: a.seed)
    }
}

@_cdecl("relusv_gmw_accumulator_state_size")
public func relusv_gmw_accumulator_state_size(_ handle: OpaquePointer?, _ size: UnsafeMutablePointer<Int>?)
    -> relusv_status
{
    guarded {
        let a = try AccumulatorBox.from(handle)
        try required(size, "size").pointee = a.serializedSize
    }
}

@_cdecl("relusv_gmw_accumulator_export")
public func relusv_gmw_accumulator_export(
    _ handle: OpaquePointer?, _ buffer: UnsafeMutableRawPointer?, _ capacity: Int
) -> relusv_status {
    guarded {
        let a = try AccumulatorBox.from(handle)
        let buffer = try required(buffer, "buffer")
        guard capacity < 0 || capacity >= a.serializedSize else {  // negative: a size_t above Int.max
            throw CallError(
                RELUSV_ERROR_INVALID_ARGUMENT,
                "buffer of \(capacity) bytes is smaller than the state (\(a.serializedSize) bytes)")
        }
        let bytes = a.serialized()
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }
}

@_cdecl("relusv_gmw_accumulator_import")
public func relusv_gmw_accumulator_import(
    _ buffer: UnsafeRawPointer?, _ size: Int, _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> relusv_status {
    guarded {
        let buffer = try required(buffer, "buffer")
        let out = try required(out, "accumulator")
        guard size >= 0 else {  // a size_t above Int.max
            throw CallError(
                RELUSV_ERROR_CORRUPT_STATE, "state size \(UInt(bitPattern: size)) is not that of any accumulator")
        }
        let accumulator = try AnyWidthAccumulator(serialized: UnsafeRawBufferPointer(start: buffer, count: size))
        out.pointee = AccumulatorBox(accumulator).handle()
    }
}
