import type { TaskView } from "../types";
import { type Option, type Picks, type Question, options } from "./categorization";

interface Props {
  task: TaskView;
  qs: Question[];
  picks: Picks;
  onChoose: (option: Option) => void;
}

function isUrl(value: string): boolean {
  return /^https?:\/\//i.test(value.trim());
}

/** The attachment as text (never as markup: no script in task data ever runs) or an image. */
function Attachment({ params }: { params: Record<string, unknown> }) {
  const attachment = typeof params.attachment === "string" ? params.attachment : "";
  const kind = params.attachment_type;
  if ((kind === "image" || (kind === undefined && isUrl(attachment))) && isUrl(attachment)) {
    return <img class="attachment-image" src={attachment} alt="The item to categorize" />;
  }
  return (
    <div class="attachment-text" data-testid="attachment">
      {attachment}
    </div>
  );
}

export function Categorization({ task, qs, picks, onChoose }: Props) {
  const all = options(qs);
  return (
    <div class="categorization">
      <Attachment params={task.params} />
      {qs.map((q, qi) => (
        <fieldset class="question" key={q.name ?? "categories"}>
          <legend>
            {q.name ?? "Category"}
            {q.multiple ? " (choose any)" : " (choose one)"}
          </legend>
          {q.description && <p class="muted">{q.description}</p>}
          <div class="choices">
            {q.choices.map((choice) => {
              const n = all.findIndex((o) => o.question === qi && o.choice === choice);
              const checked = picks[qi].includes(choice);
              const id = `choice-${qi}-${n}`;
              return (
                <label class={checked ? "choice chosen" : "choice"} for={id} key={choice}>
                  <input
                    id={id}
                    type={q.multiple ? "checkbox" : "radio"}
                    name={`question-${qi}`}
                    checked={checked}
                    onChange={() => onChoose({ question: qi, choice })}
                  />
                  {n < 9 && <kbd aria-hidden="true">{n + 1}</kbd>}
                  <span>{choice}</span>
                </label>
              );
            })}
          </div>
        </fieldset>
      ))}
    </div>
  );
}
