/** Why an input was refused; the message names the input and what was wrong with it. */
export type InputProblem =
  | "missing"
  | "not-a-file"
  | "outside-roots"
  | "no-roots"
  | "unreadable"
  | "invalid"
  | "unknown-pipeline";

/** Bad input from a person or another service: refused before anything is recorded. */
export class InputError extends Error {
  readonly problem: InputProblem;
  readonly input: string;
  constructor(problem: InputProblem, input: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "InputError";
    this.problem = problem;
    this.input = input;
  }
}

export const isInputError = (e: unknown): e is InputError => e instanceof InputError;
