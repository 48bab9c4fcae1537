// The profile photo upload: sent with XMLHttpRequest, whose upload events
// drive a real progress bar; then the bar follows the image-resize job
// (fed by the jobs poller) until the new avatar is ready. A refused file is
// explained in words: too big, not a photo, too costly, too many uploads.

import { ApiError, describe, sentence } from "/js/api.js";
import { clearErrors } from "/js/forms.js";
import { token } from "/js/session.js";
import { $, announce } from "/ui.js";

/** The upload form; `app.jobs` polls the job an upload starts. */
export function createPhoto(app) {
  // The image-resize job of the last upload, until it finishes.
  const upload = { jobId: null };

  $("upload-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    clearErrors(form);
    const file = $("photo").files[0];
    if (!file) {
      photoError("Choose a photo first.");
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    setStatus("Uploading…", 0);

    // fetch() cannot report upload progress; XMLHttpRequest can.
    const request = new XMLHttpRequest();
    request.open("POST", "/api/photos");
    request.setRequestHeader("Authorization", `Bearer ${token()}`);
    request.responseType = "json";
    request.upload.addEventListener("progress", (progress) => {
      if (progress.lengthComputable) {
        setStatus("Uploading…", Math.round((progress.loaded / progress.total) * 100));
      }
    });
    request.addEventListener("load", () => {
      button.disabled = false;
      if (request.status === 202) {
        upload.jobId = request.response.job.id;
        form.reset();
        setStatus("Processing your photo…", 0);
        announce("Photo uploaded. Processing it now.");
        app.jobs.start();
        return;
      }
      $("upload-status").hidden = true;
      const error = new ApiError(request.status, request.response, request.getResponseHeader("Retry-After"));
      if (error.status === 401) {
        app.sessionEnded();
        return;
      }
      photoError(refusal(error));
    });
    request.addEventListener("error", () => {
      button.disabled = false;
      $("upload-status").hidden = true;
      photoError(describe(new ApiError(0, null, null)));
    });
    const body = new FormData();
    body.append("photo", file);
    request.send(body);
  });

  return {
    /** Follows `job` if it is the last upload's. */
    jobChanged(job) {
      if (job.id !== upload.jobId) return;
      if (job.state === "completed") {
        setStatus("Your new photo is ready.", 100);
        upload.jobId = null;
      } else if (job.state === "failed") {
        $("upload-status").hidden = true;
        photoError(job.error?.message ?? "We could not process this photo.");
        upload.jobId = null;
      } else {
        setStatus(`Processing your photo… ${job.progress}%`, job.progress);
      }
    },
    /** Forgets the upload and the avatar: nobody is signed in. */
    clear() {
      upload.jobId = null;
      $("upload-status").hidden = true;
      $("upload-form").reset();
      $("avatar").removeAttribute("src");
      $("avatar").removeAttribute("srcset");
    },
  };
}

/** Why the api refused a photo, in words. */
function refusal(error) {
  switch (error.code) {
    case "payload_too_large":
      return sentence(error.message);
    case "unsupported_media_type":
      return "This file is not a photo we can use. Choose a JPEG, PNG or WebP image.";
    case "validation_failed":
      return error.fields.photo ? sentence(`This photo ${error.fields.photo}`) : describe(error);
    case "rate_limited":
      return `You have uploaded many photos recently.${Number.isFinite(error.retryAfter) ? ` Try again in ${error.retryAfter} s.` : ""}`;
    default:
      return describe(error);
  }
}

function photoError(message) {
  $("photo-error").textContent = message;
  $("photo").setAttribute("aria-invalid", "true");
  announce(message);
}

function setStatus(text, percent) {
  $("upload-status").hidden = false;
  $("upload-label").textContent = text;
  $("upload-progress").value = percent;
}
