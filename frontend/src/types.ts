export interface Qualification {
  required: number;
  answered: number;
  score: number | null;
  status: "not_started" | "in_progress" | "passed" | "failed";
  attempt: number;
  attempts_left: number;
  pass_mark: number;
}

export interface WorkProject {
  name: string;
  type: string;
  qualification: Qualification | null;
}

export interface TaskView {
  task_id: string;
  type: string;
  instruction: string;
  project?: string;
  params: Record<string, unknown>;
  rework?: unknown;
}

export interface Offer {
  assignment_id: string;
  task: TaskView;
  lease_expires_at: string;
  training?: Qualification;
}

export interface SubmitResult {
  assignment_id: string;
  task_id: string | null;
  status: string;
  submitted_at: string | null;
  feedback?: { expected_response: Record<string, unknown>; score: number; correct: boolean };
  qualification?: Qualification;
}
