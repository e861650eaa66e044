// What a systemd unit name may be, checked where the config is read and again where systemctl runs:
// a concrete unit (no template, no option-looking name) of a known type.
const unitTypes = ['service', 'socket', 'target', 'timer', 'mount', 'path', 'slice', 'scope', 'device', 'automount', 'swap'];
// systemd.unit(5): letters, digits, ":", "-", "_", ".", "\" in the prefix; an instance may also hold "@".
const unitChars = /^[A-Za-z0-9:_.\\-]+$/;
const instanceChars = /^[A-Za-z0-9:_.\\@-]+$/;

/** Why a unit name is unusable, or undefined when it is a concrete unit systemctl can act on. */
export function unitNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'the name is empty';
  if (name.length > 255) return 'longer than 255 characters';
  if (name.startsWith('-')) return 'it starts with "-" and would read as an option';
  const dot = name.lastIndexOf('.');
  const type = dot > 0 ? name.slice(dot + 1) : '';
  if (!unitTypes.includes(type)) return `it does not end in a unit type (.${unitTypes.join(', .')})`;
  const stem = name.slice(0, dot);
  const at = stem.indexOf('@');
  const prefix = at < 0 ? stem : stem.slice(0, at);
  if (!unitChars.test(prefix)) return 'only letters, digits and ":_.-\\" are allowed before the type';
  if (at >= 0) {
    const instance = stem.slice(at + 1);
    // A template has no process to restart or status to read; only its instances do.
    if (instance === '') return 'it is a template; name an instance (prefix@instance.type)';
    if (!instanceChars.test(instance)) return 'only letters, digits and ":_.-\\@" are allowed in the instance';
  }
  return undefined;
}
