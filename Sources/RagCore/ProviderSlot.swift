import Synchronization

/// A closure that one thread sets and others call, for example where to learn whether ingest is blocked.
///
/// The closure is kept behind a class reference. A bare closure kept in a `Mutex` and copied out with
/// `withLock { $0 }` came back wrapped in one more reabstraction thunk at every read (Swift 6.3): each call
/// allocated a little and ran through a chain one frame deeper than the last, until the stack overflowed.
public final class ProviderSlot<Value>: Sendable {
    private final class Box: Sendable {
        let call: @Sendable () -> Value
        init(_ call: @escaping @Sendable () -> Value) { self.call = call }
    }

    private let slot = Mutex<Box?>(nil)

    public init() {}

    /// Replaces the closure.
    public func set(_ provider: @escaping @Sendable () -> Value) {
        let box = Box(provider)
        slot.withLock { $0 = box }
    }

    /// The closure's value, or nil before one is set.
    public func callAsFunction() -> Value? {
        slot.withLock { $0 }?.call()
    }
}
