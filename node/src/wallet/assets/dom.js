// Small DOM helpers: elements built with text only (nothing from the node is ever parsed as
// HTML), a copy button, and running a form's action with its outcome shown in the form.

/** `<tag attrs…>children…</tag>`; strings become text, never HTML. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(name, value === true ? '' : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

/** A button that copies `text()` to the clipboard and says so. */
export function copyButton(text, label = 'Copy') {
  const button = el('button', { type: 'button', class: 'copy', 'aria-label': `${label}: copy to the clipboard` }, 'Copy');
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text());
      button.textContent = 'Copied';
    } catch {
      button.textContent = 'Select and copy';
    }
    setTimeout(() => { button.textContent = 'Copy'; }, 1500);
  });
  return button;
}

/**
 * Runs `action` for `form`: its buttons are disabled meanwhile, `outcome` (a role=status
 * element) says what is under way, then what happened or, plainly, the node's error.
 */
export async function perform(form, outcome, doing, action) {
  const buttons = form.querySelectorAll('button');
  for (const button of buttons) button.disabled = true;
  outcome.className = 'outcome busy';
  outcome.textContent = doing;
  try {
    outcome.textContent = await action();
    outcome.className = 'outcome done';
  } catch (error) {
    outcome.textContent = error.message;
    outcome.className = 'outcome error';
  } finally {
    for (const button of buttons) button.disabled = false;
  }
}

/** Shows `describe()` in `preview` as the form changes; an Error's message shows as a problem. */
export function preview(form, describe) {
  const target = form.querySelector('.preview');
  const update = () => {
    try {
      target.textContent = describe();
      target.classList.remove('problem');
    } catch (error) {
      target.textContent = error.message;
      target.classList.add('problem');
    }
  };
  form.addEventListener('input', update);
  update();
  return update;
}
