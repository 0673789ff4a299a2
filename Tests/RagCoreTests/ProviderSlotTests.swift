import Glibc
import Testing
import RagCore

/// `ProviderSlot`, and a guard against the pattern it replaces. In ragd a concretely typed closure kept in a `Mutex`
/// (`Mutex<(@Sendable () -> Bool)?>`) and read with `withLock { $0 }` came back wrapped in one more reabstraction
/// thunk at every read (Swift 6.3.1, optimised builds): each read allocated, and calls ran through a chain one frame
/// deeper each time, which showed as the soak's creeping RSS and would have ended in a stack overflow.
struct ProviderSlotTests {
    final class Outcome: @unchecked Sendable {  // written by the reader thread before it ends, read after join
        var values: [Int] = []
        var missing = 0
    }

    /// Reads on a thread with a 256 KiB stack, where a chain of thunks growing by one per read would overflow.
    @Test func manyReadsOnASmallStack() throws {
        let slot = ProviderSlot<Int>()
        #expect(slot() == nil)
        slot.set { 7 }
        let outcome = Outcome()
        let context = Unmanaged.passRetained(Context(slot: slot, outcome: outcome)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setstacksize(&attributes, 256 * 1024)
        var thread = pthread_t()
        let created = pthread_create(&thread, &attributes, { raw in
            let context = Unmanaged<Context>.fromOpaque(raw!).takeRetainedValue()
            for _ in 0..<20_000 {
                if let value = context.slot() { context.outcome.values.append(value) } else { context.outcome.missing += 1 }
            }
            return nil
        }, context)
        pthread_attr_destroy(&attributes)
        try #require(created == 0)
        pthread_join(thread, nil)
        #expect(outcome.values.count == 20_000 && outcome.missing == 0 && Set(outcome.values) == [7])
        slot.set { 8 }
        #expect(slot() == 8)
    }

    /// No source keeps a bare closure in a `Mutex` (use `ProviderSlot`, which keeps it behind a class reference).
    @Test func noBareClosureInAMutex() throws {
        // This file is <root>/Tests/RagCoreTests/ProviderSlotTests.swift.
        let root = "/" + String(#filePath).split(separator: "/").dropLast(3).joined(separator: "/") + "/Sources"
        let listing = try #require(popen("grep -rnE 'Mutex<[(]?(@Sendable )?[(][^()]*[)] *(async )?(throws )?->' '\(root)' --include=*.swift", "r"))
        var output = ""
        var buffer = [CChar](repeating: 0, count: 4096)
        while fgets(&buffer, Int32(buffer.count), listing) != nil { output += String(cString: buffer) }
        pclose(listing)
        #expect(output.isEmpty, "closures kept bare in a Mutex:\n\(output)")
    }

    final class Context: @unchecked Sendable {
        let slot: ProviderSlot<Int>
        let outcome: Outcome
        init(slot: ProviderSlot<Int>, outcome: Outcome) { self.slot = slot; self.outcome = outcome }
    }
}
