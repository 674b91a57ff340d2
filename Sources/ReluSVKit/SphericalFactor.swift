#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The dimension `n >= 1` of `gaussianToSphericalFactor`.
public func checkSphericalDimension(_ n: Int) throws {
    guard n >= 1 else { throw EngineError.invalidArgument("dimension must be at least 1, got \(n)") }
}

/// The constant `c_n = E ||g|| = sqrt(2) Gamma((n + 1) / 2) / Gamma(n / 2)` of
/// Lemma 13, relating Gaussian and spherical mean widths: `w(K) = c_n w_s(K)`.
///
/// Accurate to a few ulps for every `n >= 1` (`c_n ~ sqrt(n - 1/2)`): the
/// ratio of `tgamma` values up to `n = 300` (where they are still finite), and
/// beyond it the asymptotic series of `Gamma(x + 1/2) / Gamma(x)`, `x = n / 2`,
/// whose truncation error there is below 1e-18. (A difference of `lgamma`
/// values would lose about `log10(n log n)` digits to cancellation.)
/// The caller checks `n` with `checkSphericalDimension`.
public func gaussianToSphericalFactor(dimension n: Int) -> Double {
    precondition(n >= 1, "dimension must be positive")
    let x = Double(n) / 2
    if n <= 300 { return 2.0.squareRoot() * tgamma(x + 0.5) / tgamma(x) }
    // Gamma(x + 1/2) / Gamma(x) = sqrt(x) (1 - 1/(8x) + 1/(128x^2) + 5/(1024x^3) - 21/(32768x^4)
    //                                      - 399/(262144x^5) + 869/(4194304x^6) + O(x^-7))
    let coefficients: [Double] = [
        1, -1.0 / 8, 1.0 / 128, 5.0 / 1024, -21.0 / 32768, -399.0 / 262144, 869.0 / 4_194_304,
    ]
    let inverse = 1 / x
    let series = coefficients.reversed().reduce(0.0) { $0 * inverse + $1 }
    return (2 * x).squareRoot() * series
}
