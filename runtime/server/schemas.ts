/**
 * Request bodies of the OpenAI-compatible endpoints, validated with zod. Types are checked here
 * (each error names the field: "temperature: expected number, received string"); value ranges of
 * the sampling parameters are checked by the runtime's resolveSamplingParams, whose errors name
 * the field too. Unknown fields are ignored, as OpenAI-compatible servers usually do; `null` means
 * "the default".
 */
import { z } from 'zod';

const num = z.number().nullish();
const int = z.number().int().nullish();

const common = {
  model: z.string().nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  temperature: num,
  top_p: num,
  top_k: int,
  min_p: num,
  presence_penalty: num,
  frequency_penalty: num,
  repetition_penalty: num,
  seed: int,
  stop: z.union([z.string(), z.array(z.string()).max(16)], { error: 'must be a string or an array of at most 16 strings' }).nullish(),
  stop_token_ids: z.array(z.number().int()).nullish(),
  ignore_eos: z.boolean().nullish(),
  /** lfc extension: false opts this request out of speculative decoding. */
  speculative: z.boolean().nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  n: z.number().int().min(1).max(16).nullish(),
  user: z.string().nullish(),
};

export const completionBody = z.object({
  ...common,
  prompt: z.union([
    z.string(),
    z.array(z.string()).min(1),
    z.array(z.number().int()).min(1),
    z.array(z.array(z.number().int()).min(1)).min(1),
  ], { error: 'must be a string, an array of strings, an array of token ids, or an array of token-id arrays' }),
  /** Top-n logprobs per token (0 = the chosen token's only). */
  logprobs: z.number().int().min(0).max(20).nullish(),
  echo: z.boolean().nullish(),
});

const contentPart = z.object({ type: z.literal('text'), text: z.string() });

export const chatBody = z.object({
  ...common,
  messages: z.array(z.object({
    role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
    content: z.union([z.string(), z.array(contentPart), z.null()], { error: 'must be a string or an array of text parts' }),
    name: z.string().optional(),
  })).min(1),
  max_completion_tokens: z.number().int().min(1).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
});

export type CompletionBody = z.infer<typeof completionBody>;
export type ChatBody = z.infer<typeof chatBody>;

/** The first issue as "field: message", and the field's dotted path. */
export function describeIssue(err: z.ZodError): { message: string; param: string | null } {
  const issue = err.issues[0];
  const param = issue.path.length ? issue.path.map(String).join('.') : null;
  return { message: param ? `${param}: ${issue.message}` : issue.message, param };
}
