/**
 * lfc's OpenAI-compatible server (import from dist/runtime/server/index.js; the runtime's main
 * entry does not load it, so services that only generate do not pull in zod or prom-client).
 */
export { OpenAIServer, HttpError, serve, type ServerOptions } from './server.js';
export { plainChatTemplate, jinjaChatTemplate, messageText, type ChatMessage, type ChatTemplate } from './chat-template.js';
export { ServerMetrics } from './metrics.js';
export { completionBody, chatBody } from './schemas.js';
