/**
 * The Handlebars environment of lfc's kernel templates (templates/*.cu.hbs).
 *
 * noEscape (CUDA is not HTML) and strict (a field missing from a config is an error that names it,
 * never an empty string in generated code). Partials: every templates/partials/*.hbs, registered by
 * file name ({{> load_vec16}}). Helpers are few on purpose: configs arrive fully computed from
 * TypeScript, so templates only choose between spelled-out alternatives.
 */
import Handlebars from 'handlebars';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { templatesDir } from '../build/cuda-build.js';

let env: typeof Handlebars | undefined;
const compiled = new Map<string, Handlebars.TemplateDelegate>();

function environment(): typeof Handlebars {
  if (env) return env;
  const hb = Handlebars.create();
  hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  hb.registerHelper('ne', (a: unknown, b: unknown) => a !== b);
  hb.registerHelper('and', (...xs: unknown[]) => xs.slice(0, -1).every(Boolean));
  hb.registerHelper('or', (...xs: unknown[]) => xs.slice(0, -1).some(Boolean));
  hb.registerHelper('not', (a: unknown) => !a);
  const partials = path.join(templatesDir(), 'partials');
  if (existsSync(partials)) {
    for (const f of readdirSync(partials).filter((f) => f.endsWith('.hbs')).sort()) {
      hb.registerPartial(f.slice(0, -'.hbs'.length), readFileSync(path.join(partials, f), 'utf8'));
    }
  }
  env = hb;
  return hb;
}

/** Render templates/<file> with `ctx`; errors name the template and the missing field. */
export function renderTemplate(file: string, ctx: object): string {
  let t = compiled.get(file);
  if (!t) {
    const full = path.join(templatesDir(), file);
    if (!existsSync(full)) throw new Error(`template ${file} not found under ${templatesDir()}`);
    t = environment().compile(readFileSync(full, 'utf8'), { noEscape: true, strict: true });
    compiled.set(file, t);
  }
  try {
    return t(ctx);
  } catch (e) {
    throw new Error(`rendering templates/${file}: ${(e as Error).message}`);
  }
}
