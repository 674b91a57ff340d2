// libReluSVKit.so consists of the CABI target's entry points (relusv.h); this
// target only carries the shared library's link settings (Package.swift).
@_exported import CABI
