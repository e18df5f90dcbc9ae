/**
 * Chat templates: OpenAI chat messages → one prompt string for the engine.
 *
 * The shipped byte-level models have no chat template, so the default renders each message as a
 * "role: content\n" line and ends with "assistant: " (the model continues from there):
 *
 *   system: You are terse.
 *   user: Write a loop.
 *   assistant: 
 *
 * A model with a Hugging Face chat template (tokenizer_config.json "chat_template", Jinja) plugs
 * in through the same interface: jinjaChatTemplate(source, { bos_token, eos_token }), rendered by
 * @huggingface/jinja (`lfc serve --chat-template FILE`).
 */
import { Template } from '@huggingface/jinja';

export interface ChatMessage {
  role: string;
  /** Text, or OpenAI content parts of which the text parts are joined. */
  content: string | { type: 'text'; text: string }[] | null;
  name?: string;
}

export interface ChatTemplate {
  /** The prompt for the assistant's next message. */
  render(messages: readonly ChatMessage[]): string;
}

export function messageText(m: ChatMessage): string {
  if (m.content === null) return '';
  return typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join('');
}

/** The default: "role: content\n" per message, then "assistant: ". */
export const plainChatTemplate: ChatTemplate = {
  render: (messages) => messages.map((m) => `${m.role}: ${messageText(m)}\n`).join('') + 'assistant: ',
};

/**
 * A Hugging Face Jinja chat template, rendered with `messages` (content as text),
 * `add_generation_prompt: true` and the given special tokens. A template error (e.g. its
 * raise_exception on roles that do not alternate) is thrown with the template's message.
 */
export function jinjaChatTemplate(source: string, specialTokens: Record<string, string> = {}): ChatTemplate {
  const t = new Template(source);
  return {
    render: (messages) => t.render({
      ...specialTokens,
      messages: messages.map((m) => ({ role: m.role, content: messageText(m), ...(m.name ? { name: m.name } : {}) })),
      add_generation_prompt: true,
    }),
  };
}
