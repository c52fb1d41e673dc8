/**
 * The `rlm/testing` entry point: test doubles for programs built on `rlm`, so their tests run an
 * `RLM` loop without a provider, a key or the network. Not needed at run time.
 *
 * @packageDocumentation
 */
export { ScriptedBackend, type RecordedCall, type ScriptedBackendOptions, type ScriptedReply, type ScriptFunction } from './models/scripted-backend.js';
