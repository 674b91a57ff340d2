import ReluSVKit

// The process-wide controls of relusv.h: the memory limit and cancel-all.

@_cdecl("relusv_set_memory_limit")
public func relusv_set_memory_limit(_ bytes: Int) {
    // A size_t above Int.max reads as negative: no limit below the physical memory.
    MemoryBudget.setLimit(bytes < 0 ? Int.max : bytes)
}

@_cdecl("relusv_memory_limit")
public func relusv_memory_limit() -> Int {
    MemoryBudget.limit
}

@_cdecl("relusv_cancel_all")
public func relusv_cancel_all() {
    Cancellation.cancelAll()
}
