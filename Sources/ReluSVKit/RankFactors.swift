/// A rank-`<= k` matrix `L = U V` kept as its factors: `u` is `m x k` and `v`
/// is `k x n`, both row-major. Rank 0 is the zero matrix.
public struct RankFactors<Scalar: BLASScalar> {
    public let k: Int
    public let m: Int
    public let n: Int
    public var u: [Scalar]
    public var v: [Scalar]

    public init(k: Int, m: Int, n: Int, u: [Scalar], v: [Scalar]) {
        precondition(u.count == m * k && v.count == k * n, "factor sizes do not match the rank")
        self.k = k
        self.m = m
        self.n = n
        self.u = u
        self.v = v
    }

    /// Calls `body` with pointers to `u` and `v` (valid also when `k = 0`).
    func withPointers<R>(_ body: (UnsafePointer<Scalar>, UnsafePointer<Scalar>) throws -> R) rethrows -> R {
        let dummy: [Scalar] = [0]
        return try (u.isEmpty ? dummy : u).withUnsafeBufferPointer { up in
            try (v.isEmpty ? dummy : v).withUnsafeBufferPointer { vp in try body(up.baseAddress!, vp.baseAddress!) }
        }
    }
}

extension RankFactors {
    /// `body` with the factors as `FactorPointers` (valid also when `k = 0`).
    func withFactorPointers<R>(_ body: (FactorPointers<Scalar>) throws -> R) rethrows -> R {
        try withPointers { u, v in try body(FactorPointers(u: u, v: v, k: k, ldu: k)) }
    }
}

extension RankFactors {
    /// The same matrix with rank-`k2` factors (`k2 >= k`): zero columns of
    /// `U` and zero rows of `V` appended (fits need factors of rank `k`).
    func padded(to k2: Int) -> RankFactors {
        precondition(k2 >= k, "cannot pad to a smaller rank")
        var u2 = [Scalar](repeating: 0, count: m * k2)
        for i in 0..<m { for r in 0..<k { u2[i * k2 + r] = u[i * k + r] } }
        return RankFactors(k: k2, m: m, n: n, u: u2, v: v + [Scalar](repeating: 0, count: (k2 - k) * n))
    }
}
