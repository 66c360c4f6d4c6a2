/**
 * Lexemes as dense integer ids, shared by every division and view of one index (a lexeme is only
 * a string; which memories hold it stays per division). Ids are never reused: the dictionary only
 * grows until the index is rebuilt.
 */
export class TermDictionary {
  private readonly ids = new Map<string, number>();

  get size(): number {
    return this.ids.size;
  }

  /** The lexeme's id, assigning the next one when it is new. */
  intern(lexeme: string): number {
    let id = this.ids.get(lexeme);
    if (id === undefined) {
      id = this.ids.size;
      this.ids.set(lexeme, id);
    }
    return id;
  }

  /** The lexeme's id, or undefined when no memory ever held it. */
  find(lexeme: string): number | undefined {
    return this.ids.get(lexeme);
  }
}
