/** The fake Chat Completions server lives with the orchestrator's sources so unit tests can use it too. */
export * from '../../orchestrator/src/testing/fake-openai-server.js';
