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
        let cin = try size(inChannels, "in_channels")
        let kh = try size(kernelHeight, "kernel_height")
        let kw = try size(kernelWidth, "kernel_width")
        let h = try size(height, "height")
        let w = try size(width, "width")
        let (hw, overflow) = h.multipliedReportingOverflow(by: w)
        guard !overflow, hw <= Int(Int32.max) else {
            throw CallError(RELUSV_ERROR_SIZE_OVERFLOW, "an input of \(h) x \(w) is too large")
        }
        let geometry = try CircularConvolution(
            outChannels: k.rows, inChannels: cin, kernelHeight: kh, kernelWidth: kw,
            height: h, width: w)
        try geometry.checkKernel(rows: k.rows, columns: k.columns)
        if try size(top, "top") > 0 { try geometry.checkTop(top) }  // 0: all values
        try MemoryBudget.require(
            elements: geometry.memoryScalars(threads: try size(threads, "threads")), scalarBytes: 8,
            for: "the spectrum of this convolution")
        guard let values else { return }  // NULL: a check of the arguments and the memory only
        let report = progress(progressFn, userData, total: 1000)
        let s: [Double] =
            switch k {
            case .float(let v):
                try circularConvolutionSingularValues(
                    kernel: v, geometry: geometry, top: top == 0 ? nil : top, threads: threads, progress: report
                ).map(Double.init)
            case .double(let v):
                try circularConvolutionSingularValues(
                    kernel: v, geometry: geometry, top: top == 0 ? nil : top, threads: threads, progress: report)
            }
        copyOut(s, to: values)
    }
}
