/**
 * What one submission's normal path has settled so far, as the fallback needs it: the job id it is writing (and
 * whether that id is sure to be the request's), and whether the fallback took the submission over.
 */
export class SubmitAttempt {
  /** The job id the request will have once the normal path finishes, when known (see `decideSubmit`). */
  jobId: string | undefined;
  createdAtMs = 0;
  /**
   * Set before the intake publish: from then on the materialiser owns the outcome, and the normal path still in
   * flight must not undo anything (release the reservation, forget the request record) — the materialiser may
   * have reserved under the same job id (a no-op there) or be about to write the job.
   */
  abandoned = false;

  /** True when `jobId` came from a request record another submission wrote: this one is its duplicate. */
  duplicate = false;

  /** The request record holding `jobId` landed: written by this submission, or read back (`duplicate`). */
  writing(jobId: string, createdAtMs: number, duplicate = false): void {
    this.jobId = jobId;
    this.createdAtMs = createdAtMs;
    this.duplicate = duplicate;
  }

  /** The request record exists with an id not read yet: the job id is unknown until `writing` is called again. */
  unknown(): void {
    this.jobId = undefined;
  }
}
