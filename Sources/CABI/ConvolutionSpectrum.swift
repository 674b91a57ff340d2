import CReluSV
import ReluSVKit

// Entry points of the "convolutions" section of relusv.h: the exact singular
// values of circular convolutions, grouped and strided (MATH.md §9).

/// A `size_t` argument as an `Int`, refusing values above `Int32.max`.
private func size(_ value: Int, _ name: String) throws -> Int {
    guard value >= 0, value <= Int(Int32.max) else {  // size_t above Int.max reads as negative
        throw CallError(RELUSV_ERROR_INVALID_ARGUMENT, "\(name) = \(UInt(bitPattern: value)) is too large")
    }
    return value
}

/// A `uint64_t` option as an `Int`, refusing values above `Int32.max`.
private func option(_ value: UInt64, _ name: String) throws -> Int {
    guard value <= UInt64(Int32.max) else {
        throw CallError(RELUSV_ERROR_INVALID_ARGUMENT, "options.\(name) = \(value) is too large")
    }
    return Int(value)
}

extension relusv_conv_options: SizedOptions {
    /// Version 1 (relusv 0.2.0) ends with `threads`.
    static let firstVersionSize = MemoryLayout<Self>.offset(of: \.threads)! + MemoryLayout<UInt64>.size
    static var defaults: Self {
        relusv_conv_options(struct_size: librarySize, groups: 1, stride: 1, top: 0, threads: 0)
    }
}

@_cdecl("relusv_conv_options_init")
public func relusv_conv_options_init(_ options: UnsafeMutableRawPointer?, _ structSize: Int) {
    relusv_conv_options.initialize(options, size: structSize)
}

/// One conv spectrum request, its arguments checked.
private struct ConvRequest {
    let kernel: MatrixArgument
    let geometry: CircularConvolution
    let top: Int?
    let threads: Int

    init(
        _ kernel: UnsafePointer<relusv_matrix>?, inChannels: Int, kernelHeight: Int, kernelWidth: Int,
        height: Int, width: Int, options o: relusv_conv_options
    ) throws {
        self.kernel = try MatrixArgument(kernel, "kernel")
        let (h, w) = (try size(height, "height"), try size(width, "width"))
        let (hw, overflow) = h.multipliedReportingOverflow(by: w)
        guard !overflow, hw <= Int(Int32.max) else {
            throw CallError(RELUSV_ERROR_SIZE_OVERFLOW, "an input of \(h) x \(w) is too large")
        }
        geometry = try CircularConvolution(
            outChannels: self.kernel.rows, inChannels: try size(inChannels, "in_channels"),
            kernelHeight: try size(kernelHeight, "kernel_height"), kernelWidth: try size(kernelWidth, "kernel_width"),
            height: h, width: w, groups: try option(o.groups, "groups"), stride: try option(o.stride, "stride"))
        try geometry.checkKernel(rows: self.kernel.rows, columns: self.kernel.columns)
        let top = try option(o.top, "top")
        if top > 0 { try geometry.checkTop(top) }  // 0: all values
        self.top = top == 0 ? nil : top
        threads = try option(o.threads, "threads")
    }

    var count: Int { top ?? geometry.valueCount }

    /// Bytes the computation allocates in the kernel's precision.
    var scratchBytes: Double {
        switch kernel {
        case .float: geometry.memoryBytes(threads: threads, as: Float.self)
        case .double: geometry.memoryBytes(threads: threads, as: Double.self)
        }
    }

    func run(into values: UnsafeMutablePointer<Double>, progress: Progress) throws {
        let output = UnsafeMutableBufferPointer(start: values, count: count)
        switch kernel {
        case .float(let v):
            try circularConvolutionSpectrum(
                kernel: v, geometry: geometry, top: top, threads: threads, progress: progress, into: output)
        case .double(let v):
            try circularConvolutionSpectrum(
                kernel: v, geometry: geometry, top: top, threads: threads, progress: progress, into: output)
        }
    }
}

/// The shared body of both entries: checks, the memory report, then the computation into `values`.
private func convSpectrum(
    _ request: () throws -> ConvRequest, values: UnsafeMutablePointer<Double>?,
    scratchBytes: UnsafeMutablePointer<Int>?, progressFn: relusv_progress_fn?, userData: UnsafeMutableRawPointer?
) -> relusv_status {
    guarded {
        let r = try request()
        let bytes = r.scratchBytes
        scratchBytes?.pointee = bytes < Double(Int.max) ? Int(bytes) : Int.max
        guard let values else {
            // A check only: the computation's memory and the caller's output, which it is about to allocate.
            try MemoryBudget.require(
                bytes: bytes + 8 * Double(r.count), for: "the spectrum of this convolution and its values")
            return
        }
        try r.run(into: values, progress: progress(progressFn, userData, total: 1000))
    }
}

@_cdecl("relusv_conv_spectrum")
public func relusv_conv_spectrum(
    _ kernel: UnsafePointer<relusv_matrix>?, _ inChannels: Int, _ kernelHeight: Int, _ kernelWidth: Int,
    _ height: Int, _ width: Int, _ options: UnsafePointer<relusv_conv_options>?,
    _ values: UnsafeMutablePointer<Double>?, _ scratchBytes: UnsafeMutablePointer<Int>?,
    _ progressFn: relusv_progress_fn?, _ userData: UnsafeMutableRawPointer?
) -> relusv_status {
    convSpectrum(
        {
            try ConvRequest(
                kernel, inChannels: inChannels, kernelHeight: kernelHeight, kernelWidth: kernelWidth,
                height: height, width: width, options: try relusv_conv_options.read(options, "options"))
        }, values: values, scratchBytes: scratchBytes, progressFn: progressFn, userData: userData)
}

@_cdecl("relusv_conv_singular_values")
public func relusv_conv_singular_values(
    _ kernel: UnsafePointer<relusv_matrix>?, _ inChannels: Int, _ kernelHeight: Int, _ kernelWidth: Int,
    _ height: Int, _ width: Int, _ top: Int, _ threads: Int, _ values: UnsafeMutablePointer<Double>?,
    _ progressFn: relusv_progress_fn?, _ userData: UnsafeMutableRawPointer?
) -> relusv_status {
    convSpectrum(
        {
            var o = relusv_conv_options.defaults
            o.top = UInt64(try size(top, "top"))
            o.threads = UInt64(try size(threads, "threads"))
            return try ConvRequest(
                kernel, inChannels: inChannels, kernelHeight: kernelHeight, kernelWidth: kernelWidth,
                height: height, width: width, options: o)
        }, values: values, scratchBytes: nil, progressFn: progressFn, userData: userData)
}
