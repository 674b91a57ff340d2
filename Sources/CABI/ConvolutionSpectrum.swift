import CReluSV
import ReluSVKit

// Entry point of the "convolutions" section of relusv.h: the exact singular
// values of a stride-1 circular convolution (MATH.md §9).

/// A `size_t` argument as an `Int`, refusing values above `Int32.max`.
private func size(_ value: Int, _ name: String) throws -> Int {
    guard value >= 0, value <= Int(Int32.max) else {  // size_t above Int.max reads as negative
        throw CallError(RELUSV_ERROR_INVALID_ARGUMENT, "\(name) = \(UInt(bitPattern: value)) is too large")
    }
    return value
}

@_cdecl("relusv_conv_singular_values")
public func relusv_conv_singular_values(
    _ kernel: UnsafePointer<relusv_matrix>?, _ inChannels: Int, _ kernelHeight: Int, _ kernelWidth: Int,
    _ height: Int, _ width: Int, _ top: Int, _ threads: Int, _ values: UnsafeMutablePointer<Double>?,
    _ progressFn: relusv_progress_fn?, _ userData: UnsafeMutableRawPointer?
) -> relusv_status {
    guarded {
        let k = try MatrixArgument(kernel, "kernel")
        guard k.rows > 0 else { throw CallError(RELUSV_ERROR_EMPTY, "the kernel has no output channels (0 rows)") }
        let cin = try size(inChannels, "in_channels"), kh = try size(kernelHeight, "kernel_height")
        let kw = try size(kernelWidth, "kernel_width"), h = try size(height, "height"), w = try size(width, "width")
        guard cin > 0, kh > 0, kw > 0, k.columns == cin * kh * kw else {
            throw CallError(RELUSV_ERROR_SHAPE, "the kernel matrix has \(k.columns) columns but in_channels x "
                            + "kernel_height x kernel_width = \(cin) x \(kh) x \(kw) = \(cin * kh * kw)")
        }
        let (hw, overflow) = h.multipliedReportingOverflow(by: w)
        guard !overflow, hw <= Int(Int32.max) else {
            throw CallError(RELUSV_ERROR_SIZE_OVERFLOW, "an input of \(h) x \(w) is too large")
        }
        let geometry = try CircularConvolution(outChannels: k.rows, inChannels: cin, kernelHeight: kh, kernelWidth: kw,
                                               height: h, width: w)
        let count = try size(top, "top") == 0 ? geometry.valueCount : top
        guard count <= geometry.valueCount else {
            throw CallError(RELUSV_ERROR_INVALID_ARGUMENT,
                            "top = \(top) exceeds H W min(C_out, C_in) = \(geometry.valueCount)")
        }
        try MemoryBudget.require(elements: geometry.memoryScalars(threads: try size(threads, "threads")), scalarBytes: 8,
                                 for: "the spectrum of this convolution")
        guard let values else { return }  // NULL: a check of the arguments and the memory only
        let report = progress(progressFn, userData, total: 1000)
        let s: [Double] = switch k {
        case .float(let v): try circularConvolutionSingularValues(
            kernel: v, geometry: geometry, top: top == 0 ? nil : top, threads: threads, progress: report).map(Double.init)
        case .double(let v): try circularConvolutionSingularValues(
            kernel: v, geometry: geometry, top: top == 0 ? nil : top, threads: threads, progress: report)
        }
        copyOut(s, to: values)
    }
}
