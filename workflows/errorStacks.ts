// Evaluated once per workflow thread, before the SDK freezes the sandbox's globals (worker/bundle.ts
// preloads it). The SDK's promise hook records a stack trace for every promise a workflow creates
// (for the __stack_trace query), formatting each frame through the bundle's source map: at V8's
// default of 10 frames that was about a fifth of the workflow thread's CPU. One frame still says
// where an error was thrown. (Three frames to one: an incident's start to its restart about 5 ms
// sooner at the median of 3 alternating runs of 20, 61/67/67 ms to 60/62/57 ms, on a slow day.)
Error.stackTraceLimit = 1;

export {};
