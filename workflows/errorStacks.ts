// Evaluated once per workflow thread, before the SDK freezes the sandbox's globals (worker/bundle.ts
// preloads it). The SDK's promise hook records a stack trace for every promise a workflow creates
// (for the __stack_trace query), formatting each frame: at V8's default of 10 frames that was about
// a fifth of the workflow thread's CPU. Three frames still say where an error was thrown.
Error.stackTraceLimit = 3;

export {};
