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
 * in through the same interface: `{ render: (m) => new Template(src).render({ messages: m,
 * add_generation_prompt: true, bos_token, eos_token }) }` with @huggingface/jinja.
 */

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
