import CReluSV
import ReluSVKit

/// The object behind a `relusv_weight_svd *`: the thin SVD of one `W` in its
/// precision (`WeightSVD`), handed to `relusv_relu_singular_values` through
/// `options->weight_svd` by the calls that bound the same layer over several
/// sets of points.
final class WeightSVDBox: OpaqueHandle {
    static let kindName = "relusv_weight_svd"
    enum Factors {
        case float(WeightSVD<Float>)
        case double(WeightSVD<Double>)
    }
    let factors: Factors
    init(_ factors: Factors) { self.factors = factors }

    /// The SVD of `w` in its precision (`WeightSVD(of:vectors:tolerance:)`; nil: all pairs).
    static func made(of w: MatrixArgument, vectors: Int?, tolerance: Double = 0) throws -> WeightSVDBox {
        switch w {
        case .float(let v): WeightSVDBox(.float(try WeightSVD(of: v, vectors: vectors, tolerance: tolerance)))
        case .double(let v): WeightSVDBox(.double(try WeightSVD(of: v, vectors: vectors, tolerance: tolerance)))
        }
    }

    static func from(_ handle: OpaquePointer?, _ name: String = "svd") throws -> Factors {
        try borrow(handle, name).factors
    }

    /// The factors for a call computing in `Scalar` on the weight `w`, or the error naming the mismatch.
    static func factors<Scalar: BLASScalar>(_ handle: OpaquePointer, for w: MatrixView<Scalar>) throws -> ThinSVD<
        Scalar
    > {
        let found = try from(handle, "options->weight_svd")
        let svd: WeightSVD<Scalar>? =
            switch found {
            case .float(let f): f as? WeightSVD<Scalar>
            case .double(let d): d as? WeightSVD<Scalar>
            }
        guard let svd else {
            let bits = if case .float = found { 32 } else { 64 }
            throw CallError(
                RELUSV_ERROR_DTYPE,
                "options->weight_svd holds a float\(bits) SVD but this call computes in "
                    + "float\(MemoryLayout<Scalar>.size * 8)")
        }
        guard svd.belongs(to: w) else {
            let which =
                svd.rows == w.rows && svd.columns == w.columns
                ? "of the same shape, \(w.rows) x \(w.columns), whose entries differ from W's"
                : "(\(svd.rows) x \(svd.columns)), not of this W (\(w.rows) x \(w.columns))"
            throw CallError(RELUSV_ERROR_INVALID_ARGUMENT, "options->weight_svd is the SVD of another matrix \(which)")
        }
        return svd.svd
    }
}

@_cdecl("relusv_weight_svd_create")
public func relusv_weight_svd_create(_ w: UnsafePointer<relusv_matrix>?, _ out: UnsafeMutablePointer<OpaquePointer?>?)
    -> relusv_status
{
    guarded {
        let w = try MatrixArgument(w, "W")
        let out = try required(out, "svd")
        out.pointee = try WeightSVDBox.made(of: w, vectors: nil).handle()
    }
}

@_cdecl("relusv_weight_svd_create_leading")
public func relusv_weight_svd_create_leading(
    _ w: UnsafePointer<relusv_matrix>?, _ vectors: Int, _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> relusv_status {
    guarded {
        let w = try MatrixArgument(w, "W")
        let out = try required(out, "svd")
        // size_t arrives as Int: a count above Int.max (negative here) asks for every pair.
        out.pointee = try WeightSVDBox.made(of: w, vectors: vectors < 0 ? Int.max : vectors).handle()
    }
}

@_cdecl("relusv_weight_svd_create_tol")
public func relusv_weight_svd_create_tol(
    _ w: UnsafePointer<relusv_matrix>?, _ vectors: Int, _ tolerance: Double,
    _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> relusv_status {
    guarded {
        let w = try MatrixArgument(w, "W")
        let tolerance = try valueTolerance(tolerance)
        let out = try required(out, "svd")
        // size_t arrives as Int: a count above Int.max (negative here) asks for every pair.
        out.pointee = try WeightSVDBox.made(of: w, vectors: vectors < 0 ? Int.max : vectors, tolerance: tolerance)
            .handle()
    }
}

@_cdecl("relusv_weight_svd_vectors")
public func relusv_weight_svd_vectors(_ handle: OpaquePointer?, _ vectors: UnsafeMutablePointer<Int>?)
    -> relusv_status
{
    guarded {
        let factors = try WeightSVDBox.from(handle)
        let out = try required(vectors, "vectors")
        out.pointee =
            switch factors {
            case .float(let f): f.vectors
            case .double(let d): d.vectors
            }
    }
}

@_cdecl("relusv_weight_svd_free")
public func relusv_weight_svd_free(_ handle: OpaquePointer?) {
    WeightSVDBox.release(handle)
}

@_cdecl("relusv_weight_svd_values")
public func relusv_weight_svd_values(_ handle: OpaquePointer?, _ values: UnsafeMutablePointer<Double>?, _ count: Int)
    -> relusv_status
{
    guarded {
        let factors = try WeightSVDBox.from(handle)
        let values = try required(values, "values")
        let s: [Double] =
            switch factors {
            case .float(let f): f.svd.s.map(Double.init)
            case .double(let d): d.svd.s
            }
        guard count == s.count else {
            throw CallError(
                RELUSV_ERROR_INVALID_ARGUMENT,
                "count = \(UInt(bitPattern: count)) but the SVD has min(m, n) = \(s.count) values")
        }
        copyOut(s, to: values)
    }
}

@_cdecl("relusv_weight_svd_factors")
public func relusv_weight_svd_factors(
    _ handle: OpaquePointer?, _ u: UnsafeMutablePointer<Double>?, _ vt: UnsafeMutablePointer<Double>?, _ count: Int
) -> relusv_status {
    guarded {
        let factors = try WeightSVDBox.from(handle)
        func copy<Scalar: BLASScalar>(_ svd: ThinSVD<Scalar>) throws {
            guard count >= 0, count <= svd.u.columns else {
                throw CallError(
                    RELUSV_ERROR_INVALID_ARGUMENT,
                    "count = \(UInt(bitPattern: count)) but the SVD holds \(svd.u.columns) pairs of vectors")
            }
            let (m, n) = (svd.u.rows, svd.vt.columns)
            if let u {
                for i in 0..<m { for j in 0..<count { u[i * count + j] = Double(svd.u[i, j]) } }
            }
            if let vt {
                for j in 0..<count { for c in 0..<n { vt[j * n + c] = Double(svd.vt[j, c]) } }
            }
        }
        switch factors {
        case .float(let f): try copy(f.svd)
        case .double(let d): try copy(d.svd)
        }
    }
}
