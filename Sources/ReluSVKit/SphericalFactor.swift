#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The constant `c_n = E ||g|| = sqrt(2) Gamma((n + 1) / 2) / Gamma(n / 2)` of
/// Lemma 13, relating Gaussian and spherical mean widths: `w(K) = c_n w_s(K)`.
///
/// Computed through `lgamma` so that it stays accurate for large `n`
/// (`c_n ~ sqrt(n - 1/2)`). Requires `n >= 1`.
public func gaussianToSphericalFactor(dimension n: Int) -> Double {
    precondition(n >= 1, "dimension must be positive")
    let x = Double(n)
    return 2.0.squareRoot() * exp(lgamma((x + 1) / 2) - lgamma(x / 2))
}
